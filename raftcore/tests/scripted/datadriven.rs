//! A small reader and writer for datadriven scripts, in the format of etcd
//! raft's `testdata/*.txt`:
//!
//! ```text
//! # comments and blank lines
//! command arg key=value
//! ----
//! expected output (no blank lines)
//!
//! ```
//!
//! Each block's expected output runs to the next blank line. With
//! `RAFTCORE_REWRITE=1` the file is rewritten with the actual output, so a
//! changed transcript is reviewed as a git diff.

use std::fmt::Write as _;
use std::path::Path;

/// One command and what it is expected to print.
pub struct Block {
    /// Comments and blank lines before the command, verbatim.
    pub preamble: String,
    /// 1-based line number of the command.
    pub line: usize,
    /// The command line.
    pub command: String,
    /// The expected output, without a trailing newline.
    pub expected: String,
}

/// A parsed script.
pub struct Script {
    pub blocks: Vec<Block>,
    /// Comments after the last block.
    pub trailer: String,
}

/// Parses a script; panics with the file and line on malformed input.
pub fn parse(path: &Path, text: &str) -> Script {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut preamble = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() || line.starts_with('#') {
            preamble.push_str(line);
            preamble.push('\n');
            i += 1;
            continue;
        }
        let command_line = i + 1;
        assert!(
            lines.get(i + 1) == Some(&"----"),
            "{}:{}: expected `----` after command `{line}`",
            path.display(),
            command_line
        );
        i += 2;
        let mut expected = Vec::new();
        while i < lines.len() && !lines[i].is_empty() {
            expected.push(lines[i]);
            i += 1;
        }
        i += 1; // the blank line that ends the block
        blocks.push(Block {
            preamble: std::mem::take(&mut preamble),
            line: command_line,
            command: line.to_string(),
            expected: expected.join("\n"),
        });
    }
    Script {
        blocks,
        trailer: preamble,
    }
}

/// Renders a script with the given outputs (one per block).
pub fn render(script: &Script, outputs: &[String]) -> String {
    let mut out = String::new();
    for (block, output) in script.blocks.iter().zip(outputs) {
        out.push_str(&block.preamble);
        let _ = write!(out, "{}\n----\n{}\n\n", block.command, output);
    }
    out.push_str(&script.trailer);
    // One trailing newline, whatever the last block ended with.
    let trimmed = out.trim_end_matches('\n').len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

/// A line diff of `expected` against `actual` (`-` expected, `+` actual),
/// by longest common subsequence: outputs are short.
pub fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            let _ = writeln!(out, "  {}", a[i]);
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "- {}", a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+ {}", b[j]);
            j += 1;
        }
    }
    out
}
