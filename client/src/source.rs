//! Where a [`Client`](crate::Client)'s answers come from.
//!
//! A [`Source`] answers the attach protocol's requests for one cluster:
//! [`AgentSource`](crate::AgentSource) asks a clustertop node's agent over
//! the runtime's distribution; a source for another kind of cluster (a BEAM
//! cluster, say) maps the same requests onto what that cluster offers.
//! The client, and every view and command above it, see only the protocol.
//!
//! Log records are pushed, not asked for: a source that streams them
//! delivers each chunk to its [`LogSink`], where the client has opened the
//! subscription's stream.

use crate::{ClientError, LogChunk};
use clustertop_proto::{Request, Response};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A source's answer to one request.
pub type Answer<'a> = Pin<Box<dyn Future<Output = Result<Response, ClientError>> + Send + 'a>>;

/// Answers attach-protocol requests for one cluster.
///
/// A source answers [`Request::Hello`] too, with the version it speaks.
/// It enforces its own per-request timeout, and answers a request it
/// cannot serve with [`Response::Error`] saying why, never with a made-up
/// figure.
pub trait Source: Send + Sync + std::fmt::Debug + 'static {
    /// The entry node's name.
    fn entry(&self) -> &str;

    /// Whether the connection to the entry node is up.
    fn is_connected(&self) -> bool;

    /// Answers `request`.
    fn request(&self, request: Request) -> Answer<'_>;

    /// Where this source delivers pushed log records.
    fn logs(&self) -> &LogSink;

    /// Closes the connection; later requests fail as
    /// [`ClientError::Disconnected`].
    fn close(&self);
}

/// Chunks kept for a subscription whose id is not known yet: an agent may
/// push the first records (the backlog) before its answer to the
/// subscription arrives.
pub(crate) const EARLY_CHUNKS: usize = 64;

/// The open log streams of one client, and the chunks that came before
/// their stream. Cheap to clone (one shared table).
///
/// # Bounds
/// Each stream holds the chunks its reader has not taken, up to the
/// buffer it was opened with (a full stream drops the new chunk); at most
/// 64 chunks wait for a stream that is not open yet.
#[derive(Debug, Clone, Default)]
pub struct LogSink {
    table: Arc<Mutex<StreamTable>>,
}

#[derive(Debug, Default)]
struct StreamTable {
    open: HashMap<u64, mpsc::Sender<LogChunk>>,
    early: VecDeque<(u64, LogChunk)>,
}

impl LogSink {
    /// Opens the stream of `subscription`, with the chunks that came first.
    pub(crate) fn open(&self, subscription: u64, tx: mpsc::Sender<LogChunk>) {
        let mut t = self.table.lock();
        let early = std::mem::take(&mut t.early);
        for (id, chunk) in early {
            if id == subscription {
                let _ = tx.try_send(chunk);
            } else {
                t.early.push_back((id, chunk));
            }
        }
        t.open.insert(subscription, tx);
    }

    /// Closes the stream of `subscription`.
    pub(crate) fn remove(&self, subscription: u64) {
        self.table.lock().open.remove(&subscription);
    }

    /// A pushed chunk: to its stream, else kept (a bounded few) for a
    /// stream about to open.
    pub fn deliver(&self, subscription: u64, chunk: LogChunk) {
        let mut t = self.table.lock();
        match t.open.get(&subscription) {
            // A full stream drops the chunk rather than queue without
            // bound.
            Some(tx) => {
                let _ = tx.try_send(chunk);
            }
            None => {
                if t.early.len() >= EARLY_CHUNKS {
                    t.early.pop_front();
                }
                t.early.push_back((subscription, chunk));
            }
        }
    }

    /// Ends every stream (the connection is gone).
    pub fn end_all(&self) {
        let mut t = self.table.lock();
        t.open.clear();
        t.early.clear();
    }

    #[cfg(test)]
    fn early_len(&self) -> usize {
        self.table.lock().early.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(n: u64) -> LogChunk {
        LogChunk {
            node: "a@h".into(),
            records: Vec::new(),
            dropped_total: n,
            backlog: false,
        }
    }

    #[test]
    fn chunks_pushed_before_the_subscription_is_known_reach_its_stream() {
        let sink = LogSink::default();
        sink.deliver(7, chunk(1));
        sink.deliver(8, chunk(2));
        sink.deliver(7, chunk(3));
        let (tx, mut rx) = mpsc::channel(8);
        sink.open(7, tx);
        sink.deliver(7, chunk(4));
        let got: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|c| c.dropped_total)
            .collect();
        assert_eq!(got, [1, 3, 4]);
        // Another subscription's early chunk waits for its own stream.
        assert_eq!(sink.early_len(), 1);
        // The early ones are bounded.
        for i in 0..1_000 {
            sink.deliver(99, chunk(i));
        }
        assert_eq!(sink.early_len(), EARLY_CHUNKS);
    }
}
