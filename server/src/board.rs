//! One live board on this node: its template, its state (`domain::state::BoardState`) behind a
//! lock with the policy snapshot the document actors judge against, storing the state record,
//! and the board's keys — unlinkable owner tags per item and participant tags per board.
//!
//! On a shared store (Redis, many nodes) the state in memory is a copy of the stored one at a
//! version. A change is decided on a copy and stored by compare-and-set: when another node
//! stored first, the state is read again and the change decided again, so a budget cannot be
//! overspent and a pseudonym never given twice across nodes. Other nodes' changes arrive
//! through `refresh` (the registry follows the store's change feed).

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tafel_protocol::policy::SessionPolicy;
use tafel_protocol::template::Template;
use tafel_protocol::{BoardId, DocName, Role};

use crate::domain::state::{
    author_key, AuditEntry, Author, AuthorMode, BoardState, HiddenItem, Participant,
};
use crate::store::{BoardMeta, Store, StoreError};

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
        }
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
        let before = self.lock().removed.clone();
        self.reload().await?;
        let after = self.lock().removed.clone();
        Ok(after.difference(&before).cloned().collect())
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
        self.install(state, version);
        Ok(())
    }

    fn install(&self, state: BoardState, version: u64) {
        let mut st = self.lock();
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) =
            (state.policy(), state.author_mode);
        *st = state;
        self.version
            .store(version, std::sync::atomic::Ordering::Release);
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
