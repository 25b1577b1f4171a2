//! Changes: what the stream-handler decodes from stream records and what subscribers receive.
//! `ChangeBatch` is also the publish wire format (`POST /internal/publish`, Redis payloads).

use serde::{Deserialize, Serialize};

use crate::ids::MatchId;
use crate::model::{Match, MatchEvent};

/// The wire format version; readers refuse batches of a version they do not know.
pub const WIRE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "camelCase")]
pub enum Change {
    /// The new state of a match (created or changed).
    Match(Box<Match>),
    /// A new timeline event.
    Event(MatchEvent),
}

impl Change {
    pub fn match_id(&self) -> &MatchId {
        match self {
            Change::Match(m) => &m.id,
            Change::Event(e) => &e.match_id,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeBatch {
    pub v: u32,
    pub changes: Vec<Change>,
}

impl ChangeBatch {
    pub fn new(changes: Vec<Change>) -> Self {
        Self {
            v: WIRE_VERSION,
            changes,
        }
    }
}
