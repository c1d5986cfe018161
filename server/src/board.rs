//! One live board on this node: its template, its state (`domain::state::BoardState`) behind a
//! lock with the policy snapshot the document actors judge against, storing the state record,
//! and the board's keys — unlinkable owner tags per item and participant tags per board.
//!
//! On a shared store (Redis, many nodes) the state in memory is a copy of the stored one at a
//! version. A change is decided on a copy and stored by compare-and-set: when another node
//! stored first, the state is read again and the change decided again, so a budget cannot be
//! overspent and a pseudonym never given twice across nodes. Other nodes' changes arrive
//! through `refresh` (the registry follows the store's change feed).
//!
//! Ballots are not in the state: each dot is one atomic step on the store's ballot records
//! (`change_ballot`), decided by `domain::commands::decide_ballot` on what is stored and applied
//! only while that still holds, so a vote never rewrites the state and a budget holds across
//! nodes.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tafel_protocol::policy::SessionPolicy;
use tafel_protocol::template::Template;
use tafel_protocol::{BoardId, DocName, Role};

use crate::domain::commands::{self, BallotChange};
use crate::domain::state::{
    author_key, AuditEntry, Author, AuthorMode, BoardState, HiddenItem, Member, Participant, Round,
};
use crate::domain::Refusal;
use crate::store::{BallotEntry, BoardMeta, Store, StoreError, StoredBallot};

/// How often a ballot change is decided again when the stored ballot moved under it.
const BALLOT_TRIES: usize = 50;

pub struct Board {
    pub meta: BoardMeta,
    pub template: Arc<Template>,
    state: Mutex<BoardState>,
    /// The stored version `state` is a copy of (see `Store::put_board_state_if`).
    version: std::sync::atomic::AtomicU64,
    /// What doc actors check updates against; refreshed whenever `state` changes.
    policy: RwLock<(SessionPolicy, AuthorMode)>,
    /// One change of the state at a time on this node, so an older state never overwrites a
    /// newer one and a retry decides on the latest.
    persist_lock: tokio::sync::Mutex<()>,
    /// Key for the unlinkable owner tags written on items.
    owner_key: Vec<u8>,
    store: Arc<dyn Store>,
    /// `sub`s removed by states read from the store that `refresh` has not reported yet.
    unreported: Mutex<Vec<String>>,
    /// Participants noted for the facilitator's list, waiting for one shared store write.
    notes: Mutex<NoteQueue>,
    /// One writer of noted participants at a time; who waits meanwhile is in its batch.
    notes_turn: tokio::sync::Mutex<()>,
}

/// Group commit of participant notes: everyone who arrives while a write is under way goes
/// into the next one, so 150 people joining at once cost a few state writes, not 150.
#[derive(Default)]
struct NoteQueue {
    pending: Vec<(String, Member)>,
    /// Tickets handed out, and the highest ticket whose note is written (or given up on).
    queued: u64,
    done: u64,
}

impl Board {
    pub fn new(
        meta: BoardMeta,
        template: Arc<Template>,
        state: BoardState,
        version: u64,
        owner_key: Vec<u8>,
        store: Arc<dyn Store>,
    ) -> Board {
        let policy = RwLock::new((state.policy(), state.author_mode));
        Board {
            meta,
            template,
            state: Mutex::new(state),
            version: std::sync::atomic::AtomicU64::new(version),
            policy,
            persist_lock: tokio::sync::Mutex::new(()),
            owner_key,
            store,
            unreported: Mutex::new(Vec::new()),
            notes: Mutex::new(NoteQueue::default()),
            notes_turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Notes a participant in the participant list (a new one is inserted, a known one gets
    /// the given role and display; `first_seen` and `invite` of a known one are kept) and
    /// returns once it is stored — in one state write with every note that arrived meanwhile.
    /// A failed write is logged and the note dropped (the list is for the facilitator's view;
    /// the next join notes the participant again).
    pub async fn note_member(&self, sub: &str, member: Member) {
        let ticket = {
            let mut q = self.notes.lock().unwrap_or_else(|p| p.into_inner());
            q.queued += 1;
            q.pending.push((sub.to_owned(), member));
            q.queued
        };
        let _turn = self.notes_turn.lock().await;
        let (batch, upto) = {
            let mut q = self.notes.lock().unwrap_or_else(|p| p.into_inner());
            if q.done >= ticket {
                return; // written by the batch before ours
            }
            (std::mem::take(&mut q.pending), q.queued)
        };
        let stored = self
            .update(|st| {
                for (sub, m) in &batch {
                    match st.participants.get_mut(sub) {
                        Some(known) => {
                            known.display = m.display.clone();
                            known.role = m.role;
                        }
                        None => {
                            st.participants.insert(sub.clone(), m.clone());
                        }
                    }
                }
            })
            .await;
        if let Err(e) = stored {
            tracing::warn!(board = %self.id(), notes = batch.len(), error = %e, "cannot store the participant list yet");
        }
        let mut q = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        q.done = q.done.max(upto);
    }

    pub fn id(&self) -> &BoardId {
        &self.meta.id
    }

    /// Whether the facilitator removed this participant (their token is refused everywhere).
    pub fn is_removed(&self, sub: &str) -> bool {
        self.lock().removed.contains(sub)
    }

    pub fn lock(&self) -> MutexGuard<'_, BoardState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides `f` on the latest state and stores the result; the change takes effect (in
    /// memory, in the policy the documents judge against) only once it is stored. On a shared
    /// store `f` may run more than once: when another node stored first, it runs again on the
    /// state that node stored. So `f` decides from the state it is given, nothing else.
    pub async fn update<T>(
        &self,
        mut f: impl FnMut(&mut BoardState) -> T,
    ) -> Result<T, StoreError> {
        let _turn = self.persist_lock.lock().await;
        loop {
            let version = self.version.load(std::sync::atomic::Ordering::Acquire);
            let mut next = self.lock().clone();
            let out = f(&mut next);
            // Serializing plain data cannot fail.
            let json = serde_json::to_vec(&next).unwrap_or_default();
            match self
                .store
                .put_board_state_if(self.id(), version, json)
                .await?
            {
                Some(stored) => {
                    self.install(next, stored);
                    return Ok(out);
                }
                None => {
                    tracing::debug!(board = %self.id(), "board state changed on another node; deciding again");
                    self.reload().await?;
                }
            }
        }
    }

    /// Reads the stored state when it is newer than ours (another node changed it). Answers
    /// the `sub`s removed by that change, so their connections here can be closed.
    pub async fn refresh(&self) -> Result<Vec<String>, StoreError> {
        let _turn = self.persist_lock.lock().await;
        self.reload().await?;
        Ok(std::mem::take(
            &mut *self.unreported.lock().unwrap_or_else(|p| p.into_inner()),
        ))
    }

    async fn reload(&self) -> Result<(), StoreError> {
        let (version, json) = self.store.get_board_state_versioned(self.id()).await?;
        if version <= self.version.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let state = match json {
            Some(json) => serde_json::from_slice::<BoardState>(&json)
                .map_err(|e| StoreError::Corrupt(format!("board state of {}: {e}", self.id())))?,
            None => BoardState::default(),
        };
        // Removals stored by another node, for `refresh` to report (whichever read found them).
        let removed: Vec<String> = state
            .removed
            .difference(&self.lock().removed)
            .cloned()
            .collect();
        if !removed.is_empty() {
            self.unreported
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(removed);
        }
        self.install(state, version);
        Ok(())
    }

    fn install(&self, state: BoardState, version: u64) {
        let mut st = self.lock();
        {
            let mut policy = self.policy.write().unwrap_or_else(|p| p.into_inner());
            let mut next = state.policy();
            // The gap rows come from the gap document, not from the state record.
            next.gap_rows = policy.0.gap_rows.take();
            *policy = (next, state.author_mode);
        }
        *st = state;
        self.version
            .store(version, std::sync::atomic::Ordering::Release);
    }

    /// The row ids of the gap document as its actor on this node last stored them, for the
    /// canvas judge (a card's `gapRow`).
    pub fn set_gap_rows(&self, rows: std::collections::BTreeSet<String>) {
        let mut policy = self.policy.write().unwrap_or_else(|p| p.into_inner());
        if policy.0.gap_rows.as_deref() != Some(&rows) {
            policy.0.gap_rows = Some(Arc::new(rows));
        }
    }

    /// The round as this node knows it; a round it does not know yet (another node opened it
    /// a moment ago) is looked for in the stored state.
    pub async fn round(&self, id: &str) -> Result<Option<Round>, StoreError> {
        if let Some(r) = self.lock().rounds.get(id).cloned() {
            return Ok(Some(r));
        }
        {
            let _turn = self.persist_lock.lock().await;
            self.reload().await?;
        }
        Ok(self.lock().rounds.get(id).cloned())
    }

    /// Gives the round its record in the ballot store, from this node's copy, unless it has one:
    /// a new round, or one stored by an older version (its ballots, kept in the state then,
    /// are moved over under each participant's tag).
    pub async fn ensure_round(&self, round: &Round) -> Result<(), StoreError> {
        let ballots: Vec<BallotEntry> = round
            .ballots
            .iter()
            .flat_map(|(sub, dots)| {
                let tag = self.participant_tag(sub);
                dots.iter()
                    .map(move |(item, n)| (tag.clone(), item.clone(), *n))
            })
            .collect();
        self.store
            .put_round(self.id(), &round.id, &round.status, &ballots)
            .await?;
        Ok(())
    }

    /// The round and the participant's stored ballot in it; `None` when there is no such round.
    pub async fn ballot(
        &self,
        round: &str,
        sub: &str,
    ) -> Result<Option<(Round, StoredBallot)>, StoreError> {
        let Some(r) = self.round(round).await? else {
            return Ok(None);
        };
        let tag = self.participant_tag(sub);
        let mut stored = self
            .store
            .get_ballot(self.id(), round, &tag, &r.cards)
            .await?;
        if stored.status.is_none() {
            self.ensure_round(&r).await?;
            stored = self
                .store
                .get_ballot(self.id(), round, &tag, &r.cards)
                .await?;
        }
        Ok(Some((r, stored)))
    }

    /// One dot more or less: decided by the domain on the stored ballot and stored as one
    /// atomic step that holds only while what it was decided on does (the round open, the
    /// participant's counts unchanged); otherwise decided again on what is stored now. Answers
    /// the ballot as the participant may see it, or the refusal.
    pub async fn change_ballot(
        &self,
        round: &str,
        sub: &str,
        change: &BallotChange,
    ) -> Result<Result<serde_json::Value, Refusal>, StoreError> {
        let tag = self.participant_tag(sub);
        for _ in 0..BALLOT_TRIES {
            let Some((r, stored)) = self.ballot(round, sub).await? else {
                return Ok(Err(Refusal::not_found("no such round")));
            };
            let status = stored.status.clone().unwrap_or_default();
            let d = match commands::decide_ballot(&r, &status, &stored.dots, change) {
                Ok(d) => d,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let stored_now = self
                .store
                .change_ballot_if(self.id(), round, &tag, &d.item, d.delta, d.used, d.on_item)
                .await?;
            if stored_now {
                let mine = commands::applied(&stored.dots, &d);
                return Ok(Ok(commands::ballot_json(&r, &status, &mine)));
            }
            tracing::debug!(board = %self.id(), round, "ballot changed meanwhile; deciding again");
        }
        Err(StoreError::Unavailable(
            "a ballot kept changing while it was decided".into(),
        ))
    }

    /// Sets the round's status in the ballot store (`closed`, `revealed`): from then on no
    /// dot is accepted, on any node.
    pub async fn set_round_status(&self, round: &Round, status: &str) -> Result<(), StoreError> {
        self.ensure_round(round).await?;
        self.store
            .set_round_status(self.id(), &round.id, status)
            .await
    }

    /// Every stored dot count of the round: (participant tag, item, dots).
    pub async fn round_ballots(&self, round: &str) -> Result<Vec<BallotEntry>, StoreError> {
        self.store.round_ballots(self.id(), round).await
    }

    /// How many participants have a dot in each round this node knows.
    pub async fn voters(&self) -> Result<std::collections::BTreeMap<String, usize>, StoreError> {
        let rounds: Vec<Round> = self.lock().rounds.values().cloned().collect();
        let ids: Vec<String> = rounds.iter().map(|r| r.id.clone()).collect();
        let mut counts = self.store.round_voters(self.id(), &ids).await?;
        if counts.iter().any(Option::is_none) {
            for (r, n) in rounds.iter().zip(&counts) {
                if n.is_none() {
                    self.ensure_round(r).await?;
                }
            }
            counts = self.store.round_voters(self.id(), &ids).await?;
        }
        Ok(ids
            .into_iter()
            .zip(counts)
            .map(|(id, n)| (id, n.unwrap_or(0) as usize))
            .collect())
    }

    /// Erases a participant's dots in every round of the board (their removal).
    pub async fn erase_ballots(&self, sub: &str) -> Result<(), StoreError> {
        let ids: Vec<String> = self.lock().rounds.keys().cloned().collect();
        self.store
            .erase_ballots(self.id(), &self.participant_tag(sub), &ids)
            .await
    }

    pub fn policy(&self) -> (SessionPolicy, AuthorMode) {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The tag written as an item's `owner`: HMAC(this board's key, sub, item). Unlinkable
    /// across items and across boards (the key is derived per board), so cards of one person
    /// cannot be grouped by it, and unforgeable by clients.
    pub fn owner_tag(&self, sub: &str, item: &str) -> String {
        let mut key = match Hmac::<Sha256>::new_from_slice(&self.owner_key) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        key.update(b"board-owner-key\0");
        key.update(self.id().as_str().as_bytes());
        let board_key = key.finalize().into_bytes();
        Self::tag(&board_key, sub, item)
    }

    /// Tags written before keys were per board (one server-wide key): still recognised.
    fn legacy_owner_tag(&self, sub: &str, item: &str) -> String {
        Self::tag(&self.owner_key, sub, item)
    }

    fn tag(key: &[u8], sub: &str, item: &str) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(sub.as_bytes());
        mac.update(&[0]);
        mac.update(item.as_bytes());
        let bytes = mac.finalize().into_bytes();
        bytes.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `tag` (an item's `owner`) was made for `sub` and `item`, by either key.
    pub fn owns(&self, sub: &str, item: &str, tag: &str) -> bool {
        !tag.is_empty()
            && (self.owner_tag(sub, item) == tag || self.legacy_owner_tag(sub, item) == tag)
    }

    /// The participant's tag in this board's ownership index: HMAC(key, board, sub), so the
    /// same person has unrelated tags on two boards and the index never holds a `sub`.
    pub fn participant_tag(&self, sub: &str) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.owner_key) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(b"participant\0");
        mac.update(self.id().as_str().as_bytes());
        mac.update(&[0]);
        mac.update(sub.as_bytes());
        let bytes = mac.finalize().into_bytes();
        bytes.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    /// The participant as shown to others; employees get a stable pseudonym ("Medewerker 3").
    pub async fn participant(&self, sub: &str, role: Role, name: &str) -> Participant {
        let display = if role == Role::Employee {
            let known = self.lock().pseudonyms.get(sub).copied();
            let n = match known {
                Some(n) => n,
                None => {
                    // Numbered in the order people arrive, on whichever node: decided on the
                    // stored state, so two nodes never give out the same number.
                    let given = self
                        .update(|st| {
                            let next = st.pseudonyms.len() as u32 + 1;
                            *st.pseudonyms.entry(sub.to_owned()).or_insert(next)
                        })
                        .await;
                    match given {
                        Ok(n) => n,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot store a new pseudonym yet");
                            let mut st = self.lock();
                            let next = st.pseudonyms.len() as u32 + 1;
                            *st.pseudonyms.entry(sub.to_owned()).or_insert(next)
                        }
                    }
                }
            };
            format!("Medewerker {n}")
        } else if name.trim().is_empty() {
            Participant::party_label(role).to_owned()
        } else {
            name.trim().chars().take(60).collect()
        };
        Participant {
            sub: sub.to_owned(),
            role,
            name: name.to_owned(),
            display,
            tag: tafel_protocol::index::Owner::Participant(self.participant_tag(sub).into()),
        }
    }

    /// Records who created an item (kept on the server only) and stores it in the background.
    pub fn record_author(self: &Arc<Self>, doc: DocName, item: &str, who: &Participant) {
        let key = author_key(doc, item);
        let author = Author {
            sub: who.sub.clone(),
            role: who.role,
            display: who.display.clone(),
        };
        // Known here at once (the author's own next edits are judged against it) ...
        self.lock().authors.insert(key.clone(), author.clone());
        // ... and stored, on a shared store decided again on what other nodes stored.
        let board = self.clone();
        tokio::spawn(async move {
            let stored = board
                .update(|st| {
                    st.authors.insert(key.clone(), author.clone());
                })
                .await;
            if let Err(e) = stored {
                tracing::warn!(board = %board.id(), error = %e, "cannot store item authors yet");
            }
        });
    }

    /// Keeps the items a participant just deleted for them to restore (stored in the background,
    /// like authors: the deletion is already accepted).
    pub fn keep_deleted(
        self: &Arc<Self>,
        doc: DocName,
        items: Vec<tafel_protocol::document::RemovedItem>,
        who: &Participant,
        now_ms: u64,
    ) {
        let sub = who.sub.clone();
        let board = self.clone();
        tokio::spawn(async move {
            let stored = board
                .update(|st| {
                    for r in &items {
                        let held = HiddenItem::from_removed(r, now_ms);
                        st.keep_deleted(author_key(doc, &r.key), &sub, held, now_ms);
                    }
                })
                .await;
            if let Err(e) = stored {
                tracing::warn!(board = %board.id(), error = %e, "cannot keep deleted items for undo");
            }
        });
    }

    pub fn audit(
        &self,
        st: &mut BoardState,
        who: &Participant,
        action: &str,
        detail: serde_json::Value,
    ) {
        // The log names the role and a short hash, never the `sub` or a name.
        let who_hash: String = self.participant_tag(&who.sub).chars().take(8).collect();
        tracing::info!(board = %self.id(), role = %who.role, who = %who_hash, action, "audit");
        st.audit.push(AuditEntry {
            at: crate::auth::now_secs(),
            sub: who.sub.clone(),
            name: who.name.clone(),
            role: who.role,
            action: action.to_owned(),
            detail,
        });
    }
}
