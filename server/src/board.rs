//! One live board on this node: its template, its state (`domain::state::BoardState`) behind a
//! lock with the policy snapshot the document actors judge against, storing the state record,
//! and the board's keys — unlinkable owner tags per item and participant tags per board.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tafel_protocol::policy::SessionPolicy;
use tafel_protocol::template::Template;
use tafel_protocol::{BoardId, DocName, Role};

use crate::domain::state::{author_key, AuditEntry, Author, AuthorMode, BoardState, Participant};
use crate::store::{BoardMeta, Store, StoreError};

pub struct Board {
    pub meta: BoardMeta,
    pub template: Arc<Template>,
    state: Mutex<BoardState>,
    /// What doc actors check updates against; refreshed whenever `state` changes.
    policy: RwLock<(SessionPolicy, AuthorMode)>,
    /// Serialises writes of the state record, so an older snapshot never overwrites a newer.
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
        owner_key: Vec<u8>,
        store: Arc<dyn Store>,
    ) -> Board {
        let policy = RwLock::new((state.policy(), state.author_mode));
        Board {
            meta,
            template,
            state: Mutex::new(state),
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

    /// Runs `f` on the state, refreshes the policy snapshot and stores the state.
    pub async fn update<T>(&self, f: impl FnOnce(&mut BoardState) -> T) -> Result<T, StoreError> {
        let out = {
            let mut st = self.lock();
            let out = f(&mut st);
            *self.policy.write().unwrap_or_else(|p| p.into_inner()) = (st.policy(), st.author_mode);
            out
        };
        self.persist().await?;
        Ok(out)
    }

    pub async fn persist(&self) -> Result<(), StoreError> {
        let _turn = self.persist_lock.lock().await;
        let json = serde_json::to_vec(&*self.lock()).unwrap_or_default();
        self.store.put_board_state(self.id(), json).await
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
            let (n, fresh) = {
                let mut st = self.lock();
                let next = st.pseudonyms.len() as u32 + 1;
                let fresh = !st.pseudonyms.contains_key(sub);
                (*st.pseudonyms.entry(sub.to_owned()).or_insert(next), fresh)
            };
            if fresh {
                if let Err(e) = self.persist().await {
                    tracing::warn!(error = %e, "cannot store a new pseudonym yet");
                }
            }
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
        self.lock().authors.insert(
            author_key(doc, item),
            Author {
                sub: who.sub.clone(),
                role: who.role,
                display: who.display.clone(),
            },
        );
        let board = self.clone();
        tokio::spawn(async move {
            if let Err(e) = board.persist().await {
                tracing::warn!(board = %board.id(), error = %e, "cannot store item authors yet");
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
