//! One board's server-side state: its template, the facilitator's session (step, phase, timer,
//! locks, presentation, author setting, private writing), voting rounds with their secret
//! ballots, private drafts, employee pseudonyms, who created which item, and the audit log.
//! None of it is CRDT content: it is kept as one JSON record per board in the store, and the
//! public part is mirrored into the `control` document by the server.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tafel_protocol::policy::SessionPolicy;
use tafel_protocol::template::Template;
use tafel_protocol::{BoardId, DocName, Role};

use crate::store::{BoardMeta, Store, StoreError};

/// How authors show on cards and in presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthorMode {
    Name,
    #[default]
    Party,
    Anonymous,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Timer {
    /// "stopped", "running" or "paused".
    pub status: String,
    pub duration_ms: u64,
    /// When running: the server time (ms since the epoch) the timer ends.
    pub ends_at: Option<u64>,
    /// When paused: what was left.
    pub remaining_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    pub id: String,
    pub title: String,
    pub cards: Vec<String>,
    pub budget: u32,
    pub max_per_card: u32,
    /// "open", "closed" or "revealed".
    pub status: String,
    /// Secret until the reveal: sub → card → dots.
    pub ballots: BTreeMap<String, BTreeMap<String, u32>>,
    pub totals: Option<BTreeMap<String, u32>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub id: String,
    pub sub: String,
    pub section: String,
    pub text: String,
    #[serde(default)]
    pub pijlers: Vec<String>,
    #[serde(default)]
    pub thema: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub created_at: u64,
}

/// Who created an item: kept here, never in a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Author {
    pub sub: String,
    pub role: Role,
    /// The name shown in "name" mode (an employee's pseudonym, never their name).
    pub display: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: u64,
    pub sub: String,
    pub name: String,
    pub role: Role,
    pub action: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardState {
    pub step: String,
    pub phase: String,
    pub author_mode: AuthorMode,
    pub private_writing: bool,
    pub presentation: bool,
    pub focus: serde_json::Value,
    pub board_locked: bool,
    pub locked_docs: BTreeSet<String>,
    pub locked_sections: BTreeSet<String>,
    pub timer: Timer,
    pub rounds: BTreeMap<String, Round>,
    pub drafts: Vec<Draft>,
    /// Employee sub → the number in "Medewerker N".
    pub pseudonyms: BTreeMap<String, u32>,
    /// `doc/item` (see `author_key`) or a draft id → who created it.
    pub authors: BTreeMap<String, Author>,
    pub audit: Vec<AuditEntry>,
    /// Invite id → the invite (role, expiry, seats, how many joined, revoked).
    #[serde(default)]
    pub invites: BTreeMap<String, crate::people::Invite>,
    /// Participant `sub` → what the facilitator's list shows (role, display, how they came in).
    #[serde(default)]
    pub participants: BTreeMap<String, crate::people::Member>,
    /// The `sub`s the facilitator removed: refused on every endpoint from then on.
    #[serde(default)]
    pub removed: BTreeSet<String>,
    /// Moderated items, out of every document: `canvas/ID` or `gap/ID` (see `author_key`) →
    /// the item as it was when it was hidden or merged. Only the facilitator and the server
    /// read it; `restore` writes it back under the same id.
    #[serde(default)]
    pub hidden: BTreeMap<String, HiddenItem>,
}

/// A hidden (or merged) card or row, held on the server instead of in its document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct HiddenItem {
    /// Its plain fields (`section`, `pijlers`, `thema`, `type`, `stap`, `createdAt`, …), as JSON.
    #[serde(default)]
    pub fields: BTreeMap<String, serde_json::Value>,
    /// Its text fields (`text`; a row's `onderwerp`, `huidig`, …) as plain strings.
    #[serde(default)]
    pub texts: BTreeMap<String, String>,
    /// The server's `owner` tag, written back on restore so the item stays its creator's.
    #[serde(default)]
    pub owner: Option<String>,
    /// The `author` it showed (rewritten on restore from the author record when there is one).
    #[serde(default)]
    pub author: Option<String>,
    /// The vote total it carried, kept up to date by reveals while it is hidden.
    #[serde(default)]
    pub votes: Option<f64>,
    /// After `merge`: the item its text was appended to.
    #[serde(default)]
    pub merged_into: Option<String>,
    /// When it was hidden (ms since the epoch).
    #[serde(default)]
    pub hidden_at: u64,
}

impl Default for BoardState {
    fn default() -> Self {
        BoardState {
            step: "1".into(),
            phase: String::new(),
            author_mode: AuthorMode::default(),
            private_writing: false,
            presentation: false,
            focus: serde_json::Value::Null,
            board_locked: false,
            locked_docs: BTreeSet::new(),
            locked_sections: BTreeSet::new(),
            timer: Timer {
                status: "stopped".into(),
                ..Timer::default()
            },
            rounds: BTreeMap::new(),
            drafts: Vec::new(),
            pseudonyms: BTreeMap::new(),
            authors: BTreeMap::new(),
            audit: Vec::new(),
            hidden: BTreeMap::new(),
            invites: BTreeMap::new(),
            participants: BTreeMap::new(),
            removed: BTreeSet::new(),
        }
    }
}

impl BoardState {
    pub fn policy(&self) -> SessionPolicy {
        SessionPolicy {
            board_locked: self.board_locked,
            locked_docs: self.locked_docs.clone(),
            locked_sections: self.locked_sections.clone(),
            presentation: self.presentation,
            private_writing: self.private_writing,
        }
    }

    /// The public part, as mirrored into `control/session` (no ballots, drafts, names or audit).
    pub fn session_json(&self, now_ms: u64) -> serde_json::Value {
        serde_json::json!({
            "step": self.step,
            "phase": self.phase,
            "authorMode": self.author_mode,
            "privateWriting": self.private_writing,
            "presentation": {"on": self.presentation, "focus": self.focus},
            "locks": {
                "board": self.board_locked,
                "docs": self.locked_docs,
                "sections": self.locked_sections,
            },
            "timer": {
                "status": self.timer.status,
                "durationMs": self.timer.duration_ms,
                "endsAt": self.timer.ends_at,
                "remainingMs": self.timer.remaining_ms,
                "serverNow": now_ms,
            },
        })
    }

    /// A round as every role may see it: totals only after the reveal, never ballots.
    pub fn round_json(round: &Round) -> serde_json::Value {
        serde_json::json!({
            "title": round.title,
            "cards": round.cards,
            "budget": round.budget,
            "maxPerCard": round.max_per_card,
            "status": round.status,
            "voters": round.ballots.values().filter(|b| b.values().any(|n| *n > 0)).count(),
            "totals": round.totals,
        })
    }
}

/// The key of an item's author record: the document and the item id (`canvas/c123`), so a gap
/// row can never take over the record of a canvas card with the same id. Records from before
/// this (a bare id) are read as canvas cards.
pub fn author_key(doc: DocName, item: &str) -> String {
    format!("{}/{item}", doc.as_str())
}

/// A participant as the server shows them to others.
#[derive(Debug, Clone, PartialEq)]
pub struct Participant {
    pub sub: String,
    pub role: Role,
    /// The name from the token (the facilitator's audit log only).
    pub name: String,
    /// What documents and presence show in "name" mode: an employee's pseudonym, else the name.
    pub display: String,
    /// The board's tag for this participant in the ownership index (an HMAC of the `sub`; never
    /// the `sub` itself).
    pub tag: tafel_protocol::index::Owner,
}

impl Participant {
    pub fn party_label(role: Role) -> &'static str {
        match role {
            Role::Facilitator => "Facilitator",
            Role::Employer => "Werkgever",
            Role::Union => "Vakbond",
            Role::Employee => "Medewerker",
            Role::Observer => "Waarnemer",
        }
    }

    /// The author text for a card under `mode` (None: no author shown).
    pub fn author_text(role: Role, display: &str, mode: AuthorMode) -> Option<String> {
        match mode {
            AuthorMode::Name => Some(display.to_owned()),
            AuthorMode::Party => Some(Self::party_label(role).to_owned()),
            AuthorMode::Anonymous => None,
        }
    }
}

/// The close reason sent with 4403 when the facilitator removes a participant.
pub const REMOVED_REASON: &str = "removed by the facilitator";

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
