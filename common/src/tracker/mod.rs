//! The tracker protocol shared by client and tracker: HTTP (BEP 3, 7, 23, 48) and UDP (BEP 15, 41).
//!
//! Pure codecs, no I/O: the client encodes announces and decodes replies, the tracker decodes
//! announces and encodes replies, both with the same types.

pub mod http;
pub mod udp;

/// The event an announce reports (BEP 3; `paused` from BEP 21). A regular periodic announce
/// carries no event (`None` where an `Option<AnnounceEvent>` is used).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnnounceEvent {
    /// The first announce of a download.
    Started,
    /// The download has just finished (sent once, not when starting as a seed).
    Completed,
    /// The client is leaving the swarm.
    Stopped,
    /// BEP 21: the peer is a partial seed (it wants nothing more), sent on every announce.
    Paused,
}

impl AnnounceEvent {
    /// The HTTP `event=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnounceEvent::Started => "started",
            AnnounceEvent::Completed => "completed",
            AnnounceEvent::Stopped => "stopped",
            AnnounceEvent::Paused => "paused",
        }
    }

    /// Parses an HTTP `event=` value: `Some(None)` (no event) for the empty string and `empty`
    /// (what some clients send on a regular announce), `None` for anything unknown.
    pub fn from_http(value: &[u8]) -> Option<Option<Self>> {
        match value {
            b"" | b"empty" => Some(None),
            b"started" => Some(Some(AnnounceEvent::Started)),
            b"completed" => Some(Some(AnnounceEvent::Completed)),
            b"stopped" => Some(Some(AnnounceEvent::Stopped)),
            b"paused" => Some(Some(AnnounceEvent::Paused)),
            _ => None,
        }
    }

    /// The BEP 15 UDP event code: none 0, completed 1, started 2, stopped 3; `paused` is 4
    /// (libtorrent's value; BEP 15 defines none).
    pub fn to_udp(event: Option<Self>) -> u32 {
        match event {
            None => 0,
            Some(AnnounceEvent::Completed) => 1,
            Some(AnnounceEvent::Started) => 2,
            Some(AnnounceEvent::Stopped) => 3,
            Some(AnnounceEvent::Paused) => 4,
        }
    }

    /// Parses a BEP 15 UDP event code; `None` inside `Some` is "no event", the outer `None`
    /// an unknown code.
    pub fn from_udp(code: u32) -> Option<Option<Self>> {
        match code {
            0 => Some(None),
            1 => Some(Some(AnnounceEvent::Completed)),
            2 => Some(Some(AnnounceEvent::Started)),
            3 => Some(Some(AnnounceEvent::Stopped)),
            4 => Some(Some(AnnounceEvent::Paused)),
            _ => None,
        }
    }
}
