//! Parsing one command line: `name pos1 pos2 key=value key=(a,b)`.
//!
//! Commands take what they use; [`Cmd::finish`] then refuses anything left
//! over, so a misspelt argument fails the script instead of being ignored.

use std::collections::BTreeMap;
use std::str::FromStr;

/// A script error: the script itself is wrong (not the code under test).
pub type ScriptResult<T> = Result<T, String>;

/// A parsed command line.
pub struct Cmd {
    pub name: String,
    pos: Vec<String>,
    kv: BTreeMap<String, String>,
}

impl Cmd {
    /// Splits on whitespace; `"double quotes"` keep spaces in one argument.
    pub fn parse(line: &str) -> ScriptResult<Cmd> {
        let mut words = Vec::new();
        let mut chars = line.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            let mut word = String::new();
            let mut quoted = false;
            while let Some(&c) = chars.peek() {
                if c == '"' {
                    quoted = !quoted;
                } else if c.is_whitespace() && !quoted {
                    break;
                } else {
                    word.push(c);
                }
                chars.next();
            }
            if quoted {
                return Err(format!("unterminated quote in `{line}`"));
            }
            words.push(word);
        }
        let mut words = words.into_iter();
        let name = words.next().ok_or("empty command")?;
        let (mut pos, mut kv) = (Vec::new(), BTreeMap::new());
        for w in words {
            match w.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    if kv.insert(k.to_string(), v.to_string()).is_some() {
                        return Err(format!("argument {k} given twice"));
                    }
                }
                _ => pos.push(w),
            }
        }
        Ok(Cmd { name, pos, kv })
    }

    /// Takes the next positional argument.
    pub fn next_pos(&mut self) -> ScriptResult<String> {
        if self.pos.is_empty() {
            return Err(format!("{}: missing argument", self.name));
        }
        Ok(self.pos.remove(0))
    }

    /// Takes the next positional argument, parsed.
    pub fn next<T: FromStr>(&mut self) -> ScriptResult<T> {
        let s = self.next_pos()?;
        s.parse()
            .map_err(|_| format!("{}: bad argument `{s}`", self.name))
    }

    /// Takes the next positional argument if there is one.
    pub fn maybe_next<T: FromStr>(&mut self) -> ScriptResult<Option<T>> {
        if self.pos.is_empty() {
            return Ok(None);
        }
        self.next().map(Some)
    }

    /// Takes all remaining positional arguments.
    pub fn rest(&mut self) -> Vec<String> {
        std::mem::take(&mut self.pos)
    }

    /// Takes all remaining positional arguments as node IDs.
    pub fn rest_ids(&mut self) -> ScriptResult<Vec<u64>> {
        self.rest()
            .iter()
            .map(|s| s.parse().map_err(|_| format!("bad node id `{s}`")))
            .collect()
    }

    /// Takes `key=value`, parsed.
    pub fn key<T: FromStr>(&mut self, key: &str) -> ScriptResult<Option<T>> {
        match self.kv.remove(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("{}: bad value {key}={v}", self.name)),
        }
    }

    /// Takes `key=(a,b,c)` (or `key=a`) as a list.
    pub fn key_list<T: FromStr>(&mut self, key: &str) -> ScriptResult<Option<Vec<T>>> {
        let Some(v) = self.kv.remove(key) else {
            return Ok(None);
        };
        let inner = v.trim_start_matches('(').trim_end_matches(')');
        inner
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.trim()
                    .parse()
                    .map_err(|_| format!("{}: bad list item `{s}` in {key}", self.name))
            })
            .collect::<ScriptResult<Vec<T>>>()
            .map(Some)
    }

    /// Refuses arguments nobody took.
    pub fn finish(self) -> ScriptResult<()> {
        if !self.pos.is_empty() || !self.kv.is_empty() {
            return Err(format!(
                "{}: unexpected arguments {:?} {:?}",
                self.name, self.pos, self.kv
            ));
        }
        Ok(())
    }
}
