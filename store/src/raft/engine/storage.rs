//! The group's storage: its redb file, the log and the vote
//! ([`LogStore`]), the state machine and its snapshots
//! ([`StateMachine`]). See the parent module for what is stored and when
//! it is synced.

use super::*;

pub(super) const LOG: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("log");
pub(super) const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");

pub(super) fn io_err(e: impl std::error::Error + 'static) -> AnyError {
    AnyError::new(&e)
}

pub(super) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(v)
}

/// The group's redb file (or in-memory database).
#[derive(Clone)]
pub(super) struct Db {
    db: Arc<redb::Database>,
    /// The file, for error messages ("in memory" for RAM storage).
    path: Arc<str>,
}

impl Db {
    pub(super) fn open(storage: &Storage, group: &str) -> Result<Db, StartError> {
        let (db, path) = match storage {
            Storage::Disc(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| StartError::Storage {
                    path: dir.display().to_string(),
                    reason: e.to_string(),
                })?;
                let path = dir.join(format!("{group}.redb"));
                let db = redb::Database::create(&path).map_err(|e| StartError::Storage {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                (db, path.display().to_string())
            }
            Storage::Ram => (
                redb::Database::builder()
                    .create_with_backend(redb::backends::InMemoryBackend::new())
                    .map_err(|e| StartError::Storage {
                        path: "in memory".into(),
                        reason: e.to_string(),
                    })?,
                "in memory".to_owned(),
            ),
        };
        let db = Db {
            db: Arc::new(db),
            path: path.into(),
        };
        // Create the tables, so readers find them.
        db.write(|tx| {
            tx.open_table(LOG)?;
            tx.open_table(META)?;
            Ok(())
        })
        .map_err(|e| StartError::Storage {
            path: db.path.to_string(),
            reason: e.to_string(),
        })?;
        Ok(db)
    }

    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        f(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Runs a write transaction on the blocking pool.
    async fn write_blocking(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error> + Send + 'static,
    ) -> Result<(), AnyError> {
        let db = self.clone();
        match tokio::task::spawn_blocking(move || db.write(f)).await {
            Ok(r) => r.map_err(io_err),
            Err(e) => Err(io_err(e)),
        }
    }

    fn meta<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>, AnyError> {
        let tx = self.db.begin_read().map_err(io_err)?;
        let table = tx.open_table(META).map_err(io_err)?;
        let Some(v) = table.get(key).map_err(io_err)? else {
            return Ok(None);
        };
        let value = postcard::from_bytes(v.value())
            .map_err(|e| AnyError::error(format!("{}: {key} is unreadable: {e}", self.path)))?;
        Ok(Some(value))
    }

    fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry<Tc>>, AnyError> {
        let tx = self.db.begin_read().map_err(io_err)?;
        let table = tx.open_table(LOG).map_err(io_err)?;
        let mut out = Vec::new();
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        for row in table.range(bounds).map_err(io_err)? {
            let (index, bytes) = row.map_err(io_err)?;
            let entry: Entry<Tc> = postcard::from_bytes(bytes.value()).map_err(|e| {
                AnyError::error(format!(
                    "{}: log entry {} is unreadable: {e}",
                    self.path,
                    index.value()
                ))
            })?;
            out.push(entry);
        }
        Ok(out)
    }
}

pub(super) fn put_meta<T: Serialize>(
    tx: &redb::WriteTransaction,
    key: &str,
    value: &T,
) -> Result<(), redb::Error> {
    let bytes = encode(value).map_err(|e| redb::Error::Corrupted(e.to_string()))?;
    tx.open_table(META)?.insert(key, bytes.as_slice())?;
    Ok(())
}

/// The log and the vote.
#[derive(Clone)]
pub(super) struct LogStore {
    pub(super) db: Db,
}

impl RaftLogReader<Tc> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + Send>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<Tc>>> {
        self.db
            .entries(range)
            .map_err(|e| StorageIOError::read_logs(e).into())
    }
}

impl RaftLogStorage<Tc> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<Tc>> {
        let purged: Option<LogId<Id>> = self
            .db
            .meta("purged")
            .map_err(StorageIOError::read_logs)?
            .flatten();
        let last = {
            let tx = self
                .db
                .db
                .begin_read()
                .map_err(|e| StorageIOError::read_logs(io_err(e)))?;
            let table = tx
                .open_table(LOG)
                .map_err(|e| StorageIOError::read_logs(io_err(e)))?;
            match table
                .last()
                .map_err(|e| StorageIOError::read_logs(io_err(e)))?
            {
                Some((_, bytes)) => {
                    let entry: Entry<Tc> = postcard::from_bytes(bytes.value()).map_err(|e| {
                        StorageIOError::read_logs(AnyError::error(format!(
                            "{}: the last log entry is unreadable: {e}",
                            self.db.path
                        )))
                    })?;
                    Some(entry.log_id)
                }
                None => purged,
            }
        };
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<Id>) -> StorageResult<()> {
        let vote = *vote;
        self.db
            .write_blocking(move |tx| put_meta(tx, "vote", &vote))
            .await
            .map_err(|e| StorageIOError::write_vote(e).into())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<Id>>> {
        self.db
            .meta("vote")
            .map_err(|e| StorageIOError::read_vote(e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<Id>>) -> StorageResult<()> {
        self.db
            .write_blocking(move |tx| put_meta(tx, "committed", &committed))
            .await
            .map_err(|e| StorageIOError::write(e).into())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<Id>>> {
        Ok(self
            .db
            .meta("committed")
            .map_err(StorageIOError::read)?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<Tc>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<Tc>> + Send,
        I::IntoIter: Send,
    {
        let mut rows = Vec::new();
        for entry in entries {
            let bytes = encode(&entry).map_err(|e| StorageIOError::write_logs(io_err(e)))?;
            rows.push((entry.log_id.index, bytes));
        }
        let result = self
            .db
            .write_blocking(move |tx| {
                let mut log = tx.open_table(LOG)?;
                for (index, bytes) in &rows {
                    log.insert(index, bytes.as_slice())?;
                }
                Ok(())
            })
            .await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<Id>) -> StorageResult<()> {
        let from = log_id.index;
        self.db
            .write_blocking(move |tx| {
                tx.open_table(LOG)?.retain_in(from.., |_, _| false)?;
                Ok(())
            })
            .await
            .map_err(|e| StorageIOError::write_logs(e).into())
    }

    async fn purge(&mut self, log_id: LogId<Id>) -> StorageResult<()> {
        let upto = log_id.index;
        self.db
            .write_blocking(move |tx| {
                put_meta(tx, "purged", &Some(log_id))?;
                tx.open_table(LOG)?.retain_in(..=upto, |_, _| false)?;
                Ok(())
            })
            .await
            .map_err(|e| StorageIOError::write_logs(e).into())
    }
}

/// The snapshot as stored: its metadata and the state's bytes.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct StoredSnapshot {
    meta: SnapshotMeta<Id, BasicNode>,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

/// The state machine: the application's state in memory, what was last
/// applied, and the current snapshot (kept in the group's file).
pub(super) struct StateMachine {
    machine: Arc<RwLock<Box<dyn Machine>>>,
    applied: Option<LogId<Id>>,
    membership: StoredMembership<Id, BasicNode>,
    snapshot: Option<StoredSnapshot>,
    /// Commands since the snapshot whose handler panicked: skipped when
    /// the state is rebuilt.
    panicked: BTreeSet<u64>,
    db: Db,
    snapshots_built: u64,
    /// For the apply spans.
    group: Arc<str>,
    node: Arc<str>,
}

impl StateMachine {
    pub(super) fn open(
        db: Db,
        machine: Arc<RwLock<Box<dyn Machine>>>,
        (group, node): (Arc<str>, Arc<str>),
    ) -> Result<Self, StartError> {
        let snapshot: Option<StoredSnapshot> =
            db.meta("snapshot").map_err(|e| StartError::Storage {
                path: db.path.to_string(),
                reason: e.to_string(),
            })?;
        let mut sm = StateMachine {
            machine,
            applied: None,
            membership: StoredMembership::default(),
            snapshot: None,
            panicked: BTreeSet::new(),
            db,
            snapshots_built: 0,
            group,
            node,
        };
        if let Some(snap) = snapshot {
            sm.machine
                .write()
                .restore(Some(&snap.data))
                .map_err(|reason| StartError::Storage {
                    path: sm.db.path.to_string(),
                    reason: format!("the snapshot is unreadable: {reason}"),
                })?;
            sm.applied = snap.meta.last_log_id;
            sm.membership = snap.meta.last_membership.clone();
            sm.snapshot = Some(snap);
        }
        Ok(sm)
    }

    /// Rebuilds the state as of just before `index`: the snapshot, then
    /// the commands after it, skipping those that panicked.
    fn rebuild_before(&mut self, index: u64) -> Result<(), AnyError> {
        let from = self
            .snapshot
            .as_ref()
            .and_then(|s| s.meta.last_log_id)
            .map_or(0, |l| l.index + 1);
        let mut machine = self.machine.write();
        machine
            .restore(self.snapshot.as_ref().map(|s| s.data.as_slice()))
            .map_err(AnyError::error)?;
        for entry in self.db.entries(from..index)? {
            if let EntryPayload::Normal(cmd) = &entry.payload {
                if !self.panicked.contains(&entry.log_id.index) {
                    // Applied before without a panic: the same again.
                    let _ = machine.apply(&cmd.bytes);
                }
            }
        }
        Ok(())
    }
}

/// Builds a snapshot of the state as it is now.
pub(super) struct Builder {
    data: Result<Vec<u8>, String>,
    applied: Option<LogId<Id>>,
    membership: StoredMembership<Id, BasicNode>,
    db: Db,
    seq: u64,
}

impl RaftSnapshotBuilder<Tc> for Builder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<Tc>> {
        let data = self
            .data
            .clone()
            .map_err(|e| StorageIOError::read_state_machine(AnyError::error(e)))?;
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{}-{}", self.applied.map_or(0, |l| l.index), self.seq),
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        self.db
            .write_blocking(move |tx| put_meta(tx, "snapshot", &stored))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<Tc> for StateMachine {
    type SnapshotBuilder = Builder;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<Id>>, StoredMembership<Id, BasicNode>)> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<Tc>> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        for entry in entries {
            self.applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => replies.push(Applied::Reply(Vec::new())),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    replies.push(Applied::Reply(Vec::new()));
                }
                EntryPayload::Normal(cmd) => {
                    // A traced command's apply joins its trace, on every
                    // replica.
                    let span = cmd.trace.filter(TraceContext::is_sampled).map(|parent| {
                        let span = tracing::info_span!(
                            target: SPAN_TARGET,
                            "raft.apply",
                            group = %self.group,
                            node = %self.node,
                            index = entry.log_id.index,
                        );
                        trace::set_parent(&span, Some(&parent));
                        span
                    });
                    let _entered = span.as_ref().map(tracing::Span::enter);
                    let result = self.machine.write().apply(&cmd.bytes);
                    match result {
                        Ok(reply) => replies.push(Applied::Reply(reply)),
                        Err(why) => {
                            // Undo what the handler did before it failed.
                            self.panicked.insert(entry.log_id.index);
                            self.rebuild_before(entry.log_id.index)
                                .map_err(|e| StorageIOError::apply(entry.log_id, e))?;
                            replies.push(Applied::Failed(why));
                        }
                    }
                }
            }
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshots_built += 1;
        Builder {
            data: self.machine.read().snapshot(),
            applied: self.applied,
            membership: self.membership.clone(),
            db: self.db.clone(),
            seq: self.snapshots_built,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<Id, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        self.machine
            .write()
            .restore(Some(&stored.data))
            .map_err(|e| {
                StorageIOError::read_snapshot(Some(meta.signature()), AnyError::error(e))
            })?;
        let keep = stored.clone();
        self.db
            .write_blocking(move |tx| put_meta(tx, "snapshot", &keep))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), e))?;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.panicked.clear();
        self.snapshot = Some(stored);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<Tc>>> {
        let stored: Option<StoredSnapshot> = match &self.snapshot {
            Some(s) => Some(s.clone()),
            None => self
                .db
                .meta("snapshot")
                .map_err(|e| StorageIOError::read_snapshot(None, e))?,
        };
        Ok(stored.map(|s| {
            // Snapshots built since hold the state at their own index.
            let from = s.meta.last_log_id.map_or(0, |l| l.index);
            self.panicked.retain(|&i| i > from);
            Snapshot {
                meta: s.meta,
                snapshot: Box::new(Cursor::new(s.data)),
            }
        }))
    }
}
