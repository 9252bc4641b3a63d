//! Text layout for people: aligned columns, `key: value` lines, and cell
//! text that cannot break the layout or the terminal.

use serde_json::Value;

/// Space between columns.
const GAP: &str = "  ";

/// Rows under a header, each column as wide as its widest cell.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; cells beyond the header are dropped, missing ones blank.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells.iter().map(|c| printable(c)).collect();
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as lines, without a trailing newline. The last column is
    /// not padded, so lines carry no trailing spaces.
    pub fn render(&self) -> String {
        let widths = self.widths();
        std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|cells| render_line(cells, &widths))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn widths(&self) -> Vec<usize> {
        (0..self.header.len())
            .map(|i| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }
}

fn render_line(cells: &[String], widths: &[usize]) -> String {
    let last = cells.len().saturating_sub(1);
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        line.push_str(cell);
        if i < last {
            let pad = width - cell.chars().count();
            line.push_str(&" ".repeat(pad));
            line.push_str(GAP);
        }
    }
    line.trim_end().to_string()
}

/// `key: value` lines with the values aligned, for one item. An empty
/// value shows as `-`, so every line visibly has one.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| {
            let v = if v.is_empty() { "-" } else { v.as_str() };
            format!(
                "{:<width$} {}",
                format!("{k}:"),
                printable(v),
                width = width + 1
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` with control characters escaped: a key or label holding a
/// newline or an escape sequence must not redraw the terminal or split a
/// table row.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A JSON value as a cell: strings bare, `null` as `-`, arrays
/// comma-separated, objects as `k=v` pairs.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", cell(v)))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// A byte count for people (`0` stays `0`, others in binary units).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_align_and_lines_have_no_trailing_space() {
        let mut t = Table::new(&["ID", "ADDRESS", "STATE"]);
        t.row(vec!["1".into(), "127.0.0.1:20160".into(), "up".into()]);
        t.row(vec!["10".into(), "h:1".into()]);
        assert_eq!(
            t.render(),
            "ID  ADDRESS          STATE\n\
             1   127.0.0.1:20160  up\n\
             10  h:1"
        );
    }

    #[test]
    fn fields_align_values() {
        let text = fields(&[
            ("id", "7".into()),
            ("address", "h:1".into()),
            ("labels", "".into()),
        ]);
        assert_eq!(text, "id:      7\naddress: h:1\nlabels:  -");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
        assert_eq!(printable("plain é"), "plain é");
    }

    #[test]
    fn cells_and_sizes_read_well() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!(["a", 1])), "a,1");
        assert_eq!(cell(&json!({"zone": "z1"})), "zone=z1");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }
}
