//! WebSocket frames between a terminal client (the browser, via the Worker) and the origin.
//!
//! The client's first message is a text frame holding [`Hello`] as JSON. Every later
//! message is a binary frame whose first byte is its type:
//!
//! | dir | type | payload |
//! |---|---|---|
//! | client → server | `0x00` input | raw bytes for the PTY |
//! | client → server | `0x01` resize | JSON `{"cols":n,"rows":n}` |
//! | client → server | `0x02` pause | none (stop sending output) |
//! | client → server | `0x03` resume | none |
//! | server → client | `0x00` output | raw bytes from the PTY |
//! | server → client | `0x01` exit | JSON `{"code":n}` or `{"signal":n}` |
//! | server → client | `0x02` notice | UTF-8 text for the user |
//! | server → client | `0x03` resume token | JSON `{"token":"r1…","grace":secs}` |

use serde::{Deserialize, Serialize};

use crate::{MAX_DIMENSION, MAX_FRAME_BYTES, MIN_DIMENSION};

/// Why a frame could not be decoded. The origin closes the connection on any of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A binary frame with no type byte.
    #[error("empty frame")]
    Empty,
    /// A frame longer than [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    /// A type byte this protocol version does not define.
    #[error("unknown frame type 0x{0:02x}")]
    UnknownType(u8),
    /// A frame that must be bare (pause, resume) carried a payload.
    #[error("frame type 0x{0:02x} takes no payload")]
    UnexpectedPayload(u8),
    /// A JSON payload that does not parse into the expected shape.
    #[error("bad JSON payload: {0}")]
    BadJson(String),
    /// Columns or rows outside `MIN_DIMENSION..=MAX_DIMENSION`.
    #[error("window size {cols}x{rows} out of range 1..=1000")]
    BadSize {
        /// Requested columns.
        cols: u32,
        /// Requested rows.
        rows: u32,
    },
    /// A notice that is not UTF-8.
    #[error("notice is not UTF-8")]
    BadUtf8,
}

/// A terminal size in character cells, validated to `1..=1000` on both axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WindowSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

#[derive(Deserialize)]
struct RawSize {
    cols: u32,
    rows: u32,
}

impl WindowSize {
    /// Builds a size, refusing dimensions outside `1..=1000`.
    pub fn new(cols: u32, rows: u32) -> Result<Self, FrameError> {
        let ok = |v: u32| (u32::from(MIN_DIMENSION)..=u32::from(MAX_DIMENSION)).contains(&v);
        if ok(cols) && ok(rows) {
            Ok(Self {
                cols: cols as u16,
                rows: rows as u16,
            })
        } else {
            Err(FrameError::BadSize { cols, rows })
        }
    }

    fn from_json(bytes: &[u8]) -> Result<Self, FrameError> {
        let raw: RawSize =
            serde_json::from_slice(bytes).map_err(|e| FrameError::BadJson(e.to_string()))?;
        Self::new(raw.cols, raw.rows)
    }

    fn to_json(self) -> Vec<u8> {
        serde_json::to_vec(&self).expect("serialising two integers cannot fail")
    }
}

/// The client's first message (a text frame): the initial terminal size, so the PTY is
/// created at the right size before the demo draws anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Initial size of the terminal.
    pub size: WindowSize,
}

impl Hello {
    /// Parses the first text frame, e.g. `{"cols":80,"rows":24}`. Unknown keys are ignored
    /// so clients can add hints without breaking older origins.
    pub fn decode(text: &str) -> Result<Self, FrameError> {
        if text.len() > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(text.len()));
        }
        Ok(Self {
            size: WindowSize::from_json(text.as_bytes())?,
        })
    }

    /// The text frame a client sends first.
    pub fn encode(&self) -> String {
        String::from_utf8(self.size.to_json()).expect("JSON is UTF-8")
    }
}

/// The resume part of a hello (`"resume"` and `"received"` beside the size): a client
/// re-attaching to its session after the connection dropped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResumeHello {
    /// The resume token the origin issued last on this session.
    pub resume: String,
    /// How many output bytes (payloads of output frames) the client has received on this
    /// session so far: the origin replays from there.
    pub received: u64,
}

impl ResumeHello {
    /// The resume request in a hello text frame, if it carries one (`"resume"` present).
    /// A hello with `"resume"` but without a valid `"received"` is a protocol error.
    pub fn decode(text: &str) -> Result<Option<Self>, FrameError> {
        if text.len() > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(text.len()));
        }
        #[derive(Deserialize)]
        struct Probe {
            resume: Option<serde_json::Value>,
        }
        let probe: Probe =
            serde_json::from_str(text).map_err(|e| FrameError::BadJson(e.to_string()))?;
        if probe.resume.is_none() {
            return Ok(None);
        }
        serde_json::from_str(text)
            .map(Some)
            .map_err(|e| FrameError::BadJson(e.to_string()))
    }
}

/// What a resume-token frame (`0x03`) carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeGrant {
    /// The token to present (once) to resume this session.
    pub token: String,
    /// How long, in seconds, the origin keeps the session after a drop.
    pub grace: u64,
}

/// A binary frame from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// `0x00`: keystrokes or pasted bytes, written to the PTY as they are.
    Input(Vec<u8>),
    /// `0x01`: the terminal was resized.
    Resize(WindowSize),
    /// `0x02`: the client cannot keep up; the origin stops reading the PTY until resumed,
    /// so the demo blocks on a full PTY buffer (real backpressure, nothing buffered).
    Pause,
    /// `0x03`: the client caught up.
    Resume,
}

impl ClientFrame {
    /// Serialises into a binary WebSocket payload.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Input(bytes) => prefixed(0x00, bytes),
            Self::Resize(size) => prefixed(0x01, &size.to_json()),
            Self::Pause => vec![0x02],
            Self::Resume => vec![0x03],
        }
    }

    /// Parses a binary WebSocket payload.
    pub fn decode(frame: &[u8]) -> Result<Self, FrameError> {
        let (ty, payload) = split(frame)?;
        match ty {
            0x00 => Ok(Self::Input(payload.to_vec())),
            0x01 => Ok(Self::Resize(WindowSize::from_json(payload)?)),
            0x02 | 0x03 if !payload.is_empty() => Err(FrameError::UnexpectedPayload(ty)),
            0x02 => Ok(Self::Pause),
            0x03 => Ok(Self::Resume),
            other => Err(FrameError::UnknownType(other)),
        }
    }
}

/// How a demo's process ended, as reported in an exit frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum ExitStatus {
    /// Exited normally with this status: `{"code":n}`.
    Code(i32),
    /// Killed by this signal: `{"signal":n}`.
    Signal(i32),
}

/// A binary frame from the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    /// `0x00`: bytes the demo wrote to its terminal.
    Output(Vec<u8>),
    /// `0x01`: the demo ended; the origin closes the connection after this frame.
    Exit(ExitStatus),
    /// `0x02`: a message for the user from the origin, not the demo (e.g. "session ends in
    /// 60 s"), which the client shows apart from the terminal's output.
    Notice(String),
    /// `0x03`: a fresh resume token for this session (sent when the session starts, after
    /// each resume, and periodically while attached); it replaces any earlier one.
    ResumeToken(ResumeGrant),
}

impl ServerFrame {
    /// Serialises into a binary WebSocket payload.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Output(bytes) => Self::encode_output(bytes),
            Self::Exit(status) => prefixed(
                0x01,
                &serde_json::to_vec(status).expect("serialising an integer cannot fail"),
            ),
            Self::Notice(text) => prefixed(0x02, text.as_bytes()),
            Self::ResumeToken(grant) => prefixed(
                0x03,
                &serde_json::to_vec(grant).expect("serialising a string and an integer"),
            ),
        }
    }

    /// Builds an output frame straight from a borrowed buffer: the origin's hot path, with
    /// one allocation and one copy per PTY read.
    pub fn encode_output(bytes: &[u8]) -> Vec<u8> {
        prefixed(0x00, bytes)
    }

    /// Parses a binary WebSocket payload.
    pub fn decode(frame: &[u8]) -> Result<Self, FrameError> {
        let (ty, payload) = split(frame)?;
        match ty {
            0x00 => Ok(Self::Output(payload.to_vec())),
            0x01 => serde_json::from_slice(payload)
                .map(Self::Exit)
                .map_err(|e| FrameError::BadJson(e.to_string())),
            0x02 => std::str::from_utf8(payload)
                .map(|s| Self::Notice(s.to_owned()))
                .map_err(|_| FrameError::BadUtf8),
            0x03 => serde_json::from_slice(payload)
                .map(Self::ResumeToken)
                .map_err(|e| FrameError::BadJson(e.to_string())),
            other => Err(FrameError::UnknownType(other)),
        }
    }
}

fn prefixed(ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 1);
    v.push(ty);
    v.extend_from_slice(payload);
    v
}

fn split(frame: &[u8]) -> Result<(u8, &[u8]), FrameError> {
    if frame.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(frame.len()));
    }
    frame
        .split_first()
        .map(|(t, p)| (*t, p))
        .ok_or(FrameError::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_hello_and_grant() {
        assert_eq!(ResumeHello::decode(r#"{"cols":80,"rows":24}"#), Ok(None));
        assert_eq!(
            ResumeHello::decode(r#"{"cols":80,"rows":24,"resume":"r1.x","received":7}"#),
            Ok(Some(ResumeHello {
                resume: "r1.x".into(),
                received: 7
            }))
        );
        assert!(ResumeHello::decode(r#"{"cols":80,"rows":24,"resume":"r1.x"}"#).is_err());
        assert!(ResumeHello::decode(r#"{"resume":5,"received":1}"#).is_err());
        let g = ServerFrame::ResumeToken(ResumeGrant {
            token: "r1.a".into(),
            grace: 60,
        });
        let bytes = g.encode();
        assert_eq!(bytes[0], 0x03);
        assert_eq!(&bytes[1..], br#"{"token":"r1.a","grace":60}"#);
        assert_eq!(ServerFrame::decode(&bytes), Ok(g));
    }

    #[test]
    fn hello() {
        let h = Hello::decode(r#"{"cols":80,"rows":24}"#).unwrap();
        assert_eq!(h.size, WindowSize { cols: 80, rows: 24 });
        assert_eq!(Hello::decode(&h.encode()).unwrap(), h);
        assert!(Hello::decode(r#"{"cols":80,"rows":24,"term":"xterm"}"#).is_ok());
        assert!(matches!(
            Hello::decode(r#"{"cols":80}"#),
            Err(FrameError::BadJson(_))
        ));
        assert!(matches!(Hello::decode("nope"), Err(FrameError::BadJson(_))));
        assert!(matches!(
            Hello::decode(r#"{"cols":-1,"rows":2}"#),
            Err(FrameError::BadJson(_))
        ));
        assert_eq!(
            Hello::decode(r#"{"cols":0,"rows":24}"#),
            Err(FrameError::BadSize { cols: 0, rows: 24 })
        );
        assert_eq!(
            Hello::decode(r#"{"cols":80,"rows":1001}"#),
            Err(FrameError::BadSize {
                cols: 80,
                rows: 1001
            })
        );
        assert!(Hello::decode(r#"{"cols":1000,"rows":1}"#).is_ok());
        assert!(matches!(
            Hello::decode(r#"{"cols":99999999999,"rows":1}"#),
            Err(FrameError::BadJson(_))
        ));
    }

    #[test]
    fn client_round_trips() {
        let frames = [
            ClientFrame::Input(b"ls -la\r".to_vec()),
            ClientFrame::Input(vec![]),
            ClientFrame::Input((0..=255).collect()),
            ClientFrame::Resize(WindowSize::new(132, 43).unwrap()),
            ClientFrame::Pause,
            ClientFrame::Resume,
        ];
        for f in frames {
            assert_eq!(ClientFrame::decode(&f.encode()).unwrap(), f);
        }
    }

    #[test]
    fn client_wire_bytes() {
        assert_eq!(ClientFrame::Input(b"a".to_vec()).encode(), b"\x00a");
        assert_eq!(
            ClientFrame::Resize(WindowSize::new(100, 30).unwrap()).encode(),
            b"\x01{\"cols\":100,\"rows\":30}"
        );
        assert_eq!(ClientFrame::Pause.encode(), b"\x02");
        assert_eq!(ClientFrame::Resume.encode(), b"\x03");
    }

    #[test]
    fn client_errors() {
        assert_eq!(ClientFrame::decode(b""), Err(FrameError::Empty));
        assert_eq!(
            ClientFrame::decode(b"\x04"),
            Err(FrameError::UnknownType(4))
        );
        assert_eq!(
            ClientFrame::decode(b"\xff"),
            Err(FrameError::UnknownType(0xff))
        );
        assert_eq!(
            ClientFrame::decode(b"\x02x"),
            Err(FrameError::UnexpectedPayload(2))
        );
        assert_eq!(
            ClientFrame::decode(b"\x03x"),
            Err(FrameError::UnexpectedPayload(3))
        );
        assert!(matches!(
            ClientFrame::decode(b"\x01{}"),
            Err(FrameError::BadJson(_))
        ));
        assert!(matches!(
            ClientFrame::decode(b"\x01{\"cols\":0,\"rows\":0}"),
            Err(FrameError::BadSize { .. })
        ));
        let big = vec![0u8; MAX_FRAME_BYTES + 1];
        assert_eq!(
            ClientFrame::decode(&big),
            Err(FrameError::TooLarge(MAX_FRAME_BYTES + 1))
        );
        let max = vec![0u8; MAX_FRAME_BYTES];
        assert!(ClientFrame::decode(&max).is_ok());
    }

    #[test]
    fn server_round_trips() {
        let frames = [
            ServerFrame::Output(b"hello\r\n".to_vec()),
            ServerFrame::Output(vec![0, 1, 2, 255]),
            ServerFrame::Exit(ExitStatus::Code(0)),
            ServerFrame::Exit(ExitStatus::Code(-3)),
            ServerFrame::Exit(ExitStatus::Signal(9)),
            ServerFrame::Notice("session ends in 60 s".into()),
            ServerFrame::Notice("ünïcødé".into()),
        ];
        for f in frames {
            assert_eq!(ServerFrame::decode(&f.encode()).unwrap(), f);
        }
    }

    #[test]
    fn server_wire_bytes() {
        assert_eq!(
            ServerFrame::Exit(ExitStatus::Code(2)).encode(),
            b"\x01{\"code\":2}"
        );
        assert_eq!(
            ServerFrame::Exit(ExitStatus::Signal(9)).encode(),
            b"\x01{\"signal\":9}"
        );
        assert_eq!(ServerFrame::Notice("hi".into()).encode(), b"\x02hi");
        assert_eq!(ServerFrame::encode_output(b"x"), b"\x00x");
    }

    #[test]
    fn server_errors() {
        assert_eq!(ServerFrame::decode(b""), Err(FrameError::Empty));
        assert_eq!(
            ServerFrame::decode(b"\x04"),
            Err(FrameError::UnknownType(4))
        );
        assert_eq!(
            ServerFrame::decode(b"\x02\xff\xfe"),
            Err(FrameError::BadUtf8)
        );
        assert!(matches!(
            ServerFrame::decode(b"\x01{}"),
            Err(FrameError::BadJson(_))
        ));
        assert!(matches!(
            ServerFrame::decode(b"\x01{\"code\":1,\"signal\":2}"),
            Err(FrameError::BadJson(_))
        ));
    }
}
