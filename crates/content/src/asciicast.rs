//! Recorded terminal sessions in asciinema's asciicast v2 format, so a demo's recording
//! can be made by `folio record` or by `asciinema rec` and read by the build alike.
//!
//! The format (<https://docs.asciinema.org/manual/asciicast/v2/>): newline-delimited JSON.
//! The first line is a header object (`version` 2, `width`, `height`, optional `timestamp`,
//! `title`, `env`, `idle_time_limit`, …); each further line is an event
//! `[time, code, data]`: seconds since the start (non-decreasing), `"o"` output, `"i"`
//! input, `"m"` marker, `"r"` resize (`"COLSxROWS"`). Unknown event codes and header keys
//! are ignored, as asciinema's player does.

use std::fmt::Write as _;

use serde_json::Value;

/// Largest terminal a recording may declare (the same bound as a live session's size).
const MAX_DIMENSION: u64 = 1000;

/// A parsed recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Cast {
    /// Columns at the start.
    pub width: u16,
    /// Rows at the start.
    pub height: u16,
    /// The header's `title`, if any.
    pub title: Option<String>,
    /// The header's `idle_time_limit` (seconds), if any: players cap pauses to it.
    pub idle_time_limit: Option<f64>,
    /// The events, in file order (times never decrease).
    pub events: Vec<Event>,
}

/// One timed event of a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds since the start of the recording.
    pub time: f64,
    /// What happened.
    pub kind: EventKind,
}

/// The events folio understands; other codes are skipped when reading.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// `"o"`: text the program wrote to the terminal.
    Output(String),
    /// `"i"`: text typed into the terminal.
    Input(String),
    /// `"m"`: a named point in the recording.
    Marker(String),
    /// `"r"`: the terminal was resized to columns × rows.
    Resize(u16, u16),
}

/// Why a recording could not be read: a 1-based line and column and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct CastError {
    /// 1-based line of the file.
    pub line: usize,
    /// 1-based column in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl Cast {
    /// Parses an asciicast v2 file.
    pub fn parse(text: &str) -> Result<Cast, CastError> {
        let err = |line: usize, column: usize, message: String| CastError {
            line,
            column,
            message,
        };
        let mut lines = text.lines().enumerate();
        let (_, first) = lines
            .by_ref()
            .find(|(_, l)| !l.trim().is_empty())
            .ok_or_else(|| {
                err(
                    1,
                    1,
                    "empty recording: expected an asciicast v2 header".into(),
                )
            })?;
        let header_line = 1 + text.lines().position(|l| !l.trim().is_empty()).unwrap_or(0);
        let header: Value = serde_json::from_str(first).map_err(|e| {
            err(
                header_line,
                e.column().max(1),
                format!("header is not JSON: {e}"),
            )
        })?;
        let Some(h) = header.as_object() else {
            return Err(err(
                header_line,
                1,
                "header must be a JSON object (asciicast v2)".into(),
            ));
        };
        match h.get("version").and_then(Value::as_u64) {
            Some(2) => {}
            Some(v) => {
                return Err(err(
                    header_line,
                    1,
                    format!("asciicast version {v} is not supported: expected 2"),
                ))
            }
            None => {
                return Err(err(
                    header_line,
                    1,
                    "header has no \"version\": 2 (asciicast v2)".into(),
                ))
            }
        }
        let dim = |key: &str| -> Result<u16, CastError> {
            match h.get(key).and_then(Value::as_u64) {
                Some(v) if (1..=MAX_DIMENSION).contains(&v) => Ok(v as u16),
                _ => Err(err(
                    header_line,
                    1,
                    format!("header needs \"{key}\": a whole number from 1 to {MAX_DIMENSION}"),
                )),
            }
        };
        let width = dim("width")?;
        let height = dim("height")?;
        let idle_time_limit = h
            .get("idle_time_limit")
            .and_then(Value::as_f64)
            .filter(|v| *v > 0.0);
        let title = h.get("title").and_then(Value::as_str).map(str::to_owned);

        let mut events = Vec::new();
        let mut last = 0.0f64;
        for (i, line) in lines {
            let n = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line)
                .map_err(|e| err(n, e.column().max(1), format!("event is not JSON: {e}")))?;
            let Some(a) = v.as_array().filter(|a| a.len() == 3) else {
                return Err(err(
                    n,
                    1,
                    "an event must be [time, code, data] (asciicast v2)".into(),
                ));
            };
            let col_of = |idx: usize| column_of_element(line, idx);
            let time = a[0]
                .as_f64()
                .filter(|t| t.is_finite() && *t >= 0.0)
                .ok_or_else(|| {
                    err(
                        n,
                        col_of(0),
                        "event time must be a number of seconds ≥ 0".into(),
                    )
                })?;
            if time < last {
                return Err(err(
                    n,
                    col_of(0),
                    format!("event time {time} is before the previous event's ({last})"),
                ));
            }
            last = time;
            let code = a[1].as_str().ok_or_else(|| {
                err(
                    n,
                    col_of(1),
                    "event code must be a string (\"o\", \"i\", \"m\", \"r\")".into(),
                )
            })?;
            let data = a[2]
                .as_str()
                .ok_or_else(|| err(n, col_of(2), "event data must be a string".into()))?;
            let kind = match code {
                "o" => EventKind::Output(data.to_owned()),
                "i" => EventKind::Input(data.to_owned()),
                "m" => EventKind::Marker(data.to_owned()),
                "r" => {
                    let size = data.split_once('x').and_then(|(c, r)| {
                        let c: u64 = c.trim().parse().ok()?;
                        let r: u64 = r.trim().parse().ok()?;
                        let ok = |v: u64| (1..=MAX_DIMENSION).contains(&v);
                        (ok(c) && ok(r)).then_some((c as u16, r as u16))
                    });
                    let (c, r) = size.ok_or_else(|| {
                        err(
                            n,
                            col_of(2),
                            format!("resize data {data:?} must be \"COLSxROWS\""),
                        )
                    })?;
                    EventKind::Resize(c, r)
                }
                _ => continue,
            };
            events.push(Event { time, kind });
        }
        Ok(Cast {
            width,
            height,
            title,
            idle_time_limit,
            events,
        })
    }

    /// The recording's length in seconds (the last event's time).
    pub fn duration(&self) -> f64 {
        self.events.last().map_or(0.0, |e| e.time)
    }

    /// Writes the recording as asciicast v2 text (one header line, one line per event).
    /// `timestamp` is the Unix time the recording started, if known.
    pub fn to_asciicast(&self, timestamp: Option<i64>) -> String {
        let mut header = serde_json::Map::new();
        header.insert("version".into(), 2.into());
        header.insert("width".into(), self.width.into());
        header.insert("height".into(), self.height.into());
        if let Some(t) = timestamp {
            header.insert("timestamp".into(), t.into());
        }
        if let Some(l) = self.idle_time_limit {
            header.insert("idle_time_limit".into(), l.into());
        }
        if let Some(t) = &self.title {
            header.insert("title".into(), t.clone().into());
        }
        header.insert(
            "env".into(),
            serde_json::json!({"TERM": "xterm-256color", "SHELL": "/bin/bash"}),
        );
        let mut out = Value::Object(header).to_string();
        out.push('\n');
        for e in &self.events {
            // Microsecond precision, as asciinema writes.
            let t = (e.time * 1e6).round() / 1e6;
            let (code, data) = match &e.kind {
                EventKind::Output(s) => ("o", s.clone()),
                EventKind::Input(s) => ("i", s.clone()),
                EventKind::Marker(s) => ("m", s.clone()),
                EventKind::Resize(c, r) => ("r", format!("{c}x{r}")),
            };
            let _ = writeln!(
                out,
                "[{}, {}, {}]",
                serde_json::Number::from_f64(t).map_or_else(|| "0".into(), |n| n.to_string()),
                Value::from(code),
                Value::from(data)
            );
        }
        out
    }
}

/// The 1-based column where the `idx`-th element of the JSON array on `line` starts (the
/// line was already parsed, so this only has to skip strings and commas at depth 1).
fn column_of_element(line: &str, idx: usize) -> usize {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut seen = 0usize;
    let mut want_start = false;
    for (col, ch) in line.chars().enumerate() {
        if in_str {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_str = false;
            }
            continue;
        }
        if want_start && !ch.is_whitespace() {
            if seen == idx {
                return col + 1;
            }
            want_start = false;
        }
        match ch {
            '"' => in_str = true,
            '[' | '{' => {
                depth += 1;
                if depth == 1 {
                    want_start = true;
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => {
                seen += 1;
                want_start = true;
            }
            _ => {}
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_v2_file_from_asciinema() {
        let text = "{\"version\": 2, \"width\": 100, \"height\": 30, \"timestamp\": 1509091818, \"idle_time_limit\": 2.5, \"env\": {\"TERM\": \"xterm-256color\"}, \"theme\": {\"fg\": \"#fff\"}}\n\
[0.248848, \"o\", \"\\u001b[1;31mHello \\u001b[32mWorld!\\u001b[0m\\n\"]\n\
[1.001376, \"i\", \"ls\\r\"]\n\
[1.5, \"m\", \"chapter 2\"]\n\
[2.143733, \"r\", \"90x20\"]\n\
[3, \"x\", \"future code, skipped\"]\n";
        let c = Cast::parse(text).unwrap();
        assert_eq!((c.width, c.height), (100, 30));
        assert_eq!(c.idle_time_limit, Some(2.5));
        assert_eq!(c.events.len(), 4);
        assert_eq!(
            c.events[0].kind,
            EventKind::Output("\u{1b}[1;31mHello \u{1b}[32mWorld!\u{1b}[0m\n".into())
        );
        assert_eq!(c.events[1].kind, EventKind::Input("ls\r".into()));
        assert_eq!(c.events[2].kind, EventKind::Marker("chapter 2".into()));
        assert_eq!(c.events[3].kind, EventKind::Resize(90, 20));
        assert!((c.duration() - 2.143733).abs() < 1e-9);
    }

    #[test]
    fn bad_lines_are_located() {
        let header = "{\"version\": 2, \"width\": 80, \"height\": 24}\n";
        let cases = [
            ("", 1, 1, "empty"),
            (
                "{\"version\": 1, \"width\": 80, \"height\": 24}\n",
                1,
                1,
                "version 1",
            ),
            ("{\"version\": 2, \"height\": 24}\n", 1, 1, "\"width\""),
            ("[1, 2, 3]\n", 1, 1, "object"),
            ("{\"version\": 2, \"width\": 80,\n", 1, 27, "not JSON"),
        ];
        for (text, line, col, msg) in cases {
            let e = Cast::parse(text).unwrap_err();
            assert_eq!((e.line, e.column), (line, col), "{text:?}: {e}");
            assert!(e.message.contains(msg), "{text:?}: {e}");
        }
        let events = [
            ("[0.5, \"o\", \"a\"]\n[0.1, \"o\", \"b\"]\n", 3, 2, "before"),
            ("[0.5, \"o\", 7]\n", 2, 12, "data must be a string"),
            ("[0.5, 1, \"x\"]\n", 2, 7, "code must be a string"),
            ("[-1, \"o\", \"x\"]\n", 2, 2, "time"),
            ("[0.5, \"o\"]\n", 2, 1, "[time, code, data]"),
            ("\n\n[0.5, \"o\", \"x\"\n", 4, 14, "not JSON"),
            ("[0.5, \"r\", \"wide\"]\n", 2, 12, "COLSxROWS"),
        ];
        for (body, line, col, msg) in events {
            let e = Cast::parse(&format!("{header}{body}")).unwrap_err();
            assert_eq!((e.line, e.column), (line, col), "{body:?}: {e}");
            assert!(e.message.contains(msg), "{body:?}: {e}");
        }
    }

    #[test]
    fn writes_what_it_reads() {
        let c = Cast {
            width: 72,
            height: 18,
            title: Some("a \"demo\"".into()),
            idle_time_limit: None,
            events: vec![
                Event {
                    time: 0.0,
                    kind: EventKind::Output("$ \u{1b}[1mbold\u{1b}[0m ✓\r\n".into()),
                },
                Event {
                    time: 0.123_456_7,
                    kind: EventKind::Input("make\r".into()),
                },
                Event {
                    time: 2.0,
                    kind: EventKind::Resize(100, 40),
                },
            ],
        };
        let text = c.to_asciicast(Some(1_700_000_000));
        assert_eq!(text.lines().count(), 4);
        let back = Cast::parse(&text).unwrap();
        assert_eq!(back.width, 72);
        assert_eq!(back.title.as_deref(), Some("a \"demo\""));
        assert_eq!(back.events[0], c.events[0]);
        assert!((back.events[1].time - 0.123457).abs() < 1e-9);
        assert_eq!(back.events[2].kind, EventKind::Resize(100, 40));
    }
}
