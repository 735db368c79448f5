//! The saved routing tables: our id and the nodes of both families that are not bad, as JSON.
//!
//! Invariants: a file is written to a temporary name and renamed, so a crash never leaves
//! half a file; a file past [`MAX_STATE_FILE`] bytes, unreadable or malformed counts as none
//! (with a warning), and entries with a malformed id are skipped.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rill_common::InfoHash;
use rill_common::krpc::{CompactNode, NodeId};
use serde::{Deserialize, Serialize};

use super::DhtError;
use crate::dht::node::Node;
use crate::dht::routing_table::Status;

/// Largest state file read back (a full table is about 1,300 nodes of ~80 bytes).
const MAX_STATE_FILE: u64 = 1 << 20;

#[derive(Serialize, Deserialize)]
struct SavedState {
    id: String,
    nodes: Vec<SavedNode>,
}

#[derive(Serialize, Deserialize)]
struct SavedNode {
    id: String,
    addr: SocketAddr,
}

fn parse_id(hex: &str) -> Option<NodeId> {
    InfoHash::from_hex(hex).ok().map(NodeId::from)
}

/// Reads a saved table; a missing, oversized or unreadable file counts as none.
pub(super) async fn load_state(path: &Path) -> Option<(NodeId, Vec<CompactNode>)> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    if meta.len() > MAX_STATE_FILE {
        tracing::warn!(path = %path.display(), "DHT state file too large; ignored");
        return None;
    }
    let bytes = tokio::fs::read(path).await.ok()?;
    let state: SavedState = match serde_json::from_slice(&bytes) {
        Ok(state) => state,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "DHT state file unreadable; ignored");
            return None;
        }
    };
    let id = parse_id(&state.id)?;
    let nodes = state
        .nodes
        .iter()
        .filter_map(|n| {
            Some(CompactNode {
                id: parse_id(&n.id)?,
                addr: n.addr,
            })
        })
        .collect();
    Some((id, nodes))
}

pub(super) async fn save_state(path: &Path, node: &Node) -> Result<(), DhtError> {
    let now = Instant::now();
    let state = SavedState {
        id: node.id().to_string(),
        nodes: node
            .entries()
            .filter(|e| e.status(now) != Status::Bad)
            .map(|e| SavedNode {
                id: e.node.id.to_string(),
                addr: e.node.addr,
            })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&state).map_err(|e| DhtError::Save {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    })?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = async {
        tokio::fs::write(&tmp, &bytes).await?;
        tokio::fs::rename(&tmp, path).await
    }
    .await;
    result.map_err(|source| DhtError::Save {
        path: path.to_path_buf(),
        source,
    })
}
