//! The board's server-side state as plain data: the facilitator's session (step, phase, timer,
//! locks, presentation, author setting, private writing), voting rounds with their secret
//! ballots, private drafts, employee pseudonyms, who created which item, invites and
//! participants, held (hidden) items and the audit log. None of it is CRDT content: it is kept
//! as one JSON record per board in the store, and the public part is mirrored into the
//! `control` document by the server. No IO here.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tafel_protocol::policy::SessionPolicy;
use tafel_protocol::{DocName, Role};

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
    /// The votable items as `doc/id` (`canvas/c1`, `gap/g1`); rounds stored before items (bare
    /// card ids) are read as canvas cards, here and in `ballots` and `totals`.
    #[serde(deserialize_with = "items_of")]
    pub cards: Vec<String>,
    pub budget: u32,
    pub max_per_card: u32,
    /// "open", "closed" or "revealed".
    pub status: String,
    /// Secret until the reveal: sub → item (`doc/id`) → dots.
    #[serde(deserialize_with = "ballots_of")]
    pub ballots: BTreeMap<String, BTreeMap<String, u32>>,
    #[serde(default, deserialize_with = "totals_of")]
    pub totals: Option<BTreeMap<String, u32>>,
}

/// A stored round item: `doc/id`, or a bare card id from before items.
fn item_key(k: String) -> String {
    match k.contains('/') {
        true => k,
        false => author_key(DocName::Canvas, &k),
    }
}

fn keyed(m: BTreeMap<String, u32>) -> BTreeMap<String, u32> {
    m.into_iter().map(|(k, n)| (item_key(k), n)).collect()
}

fn items_of<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<String>::deserialize(d)?
        .into_iter()
        .map(item_key)
        .collect())
}

type Ballots = BTreeMap<String, BTreeMap<String, u32>>;

fn ballots_of<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Ballots, D::Error> {
    Ok(Ballots::deserialize(d)?
        .into_iter()
        .map(|(sub, b)| (sub, keyed(b)))
        .collect())
}

fn totals_of<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, u32>>, D::Error> {
    Ok(Option::<BTreeMap<String, u32>>::deserialize(d)?.map(keyed))
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
    pub invites: BTreeMap<String, Invite>,
    /// Participant `sub` → what the facilitator's list shows (role, display, how they came in).
    #[serde(default)]
    pub participants: BTreeMap<String, Member>,
    /// The `sub`s the facilitator removed: refused on every endpoint from then on.
    #[serde(default)]
    pub removed: BTreeSet<String>,
    /// Moderated items, out of every document: `canvas/ID` or `gap/ID` (see `author_key`) →
    /// the item as it was when it was hidden or merged. Only the facilitator and the server
    /// read it; `restore` writes it back under the same id.
    #[serde(default)]
    pub hidden: BTreeMap<String, HiddenItem>,
    /// Cards and rows a participant deleted, kept a while so that they can take the deletion
    /// back (`POST /api/boards/{id}/cards/{card}/restore`): `canvas/ID` or `gap/ID` → the item
    /// as it was and who deleted it. Bounded (`TRASH_MAX`, `TRASH_MS`), in no document and no
    /// export, erased with the board.
    #[serde(default)]
    pub trash: BTreeMap<String, Trashed>,
}

/// How many deleted items a board keeps for undo, and for how long (ms).
pub const TRASH_MAX: usize = 200;
pub const TRASH_MS: u64 = 60 * 60 * 1000;

/// A deleted card or row, held for the one who deleted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trashed {
    /// The `sub` of who deleted it (only they may restore it).
    pub by: String,
    /// The item as it was; `hidden_at` is when it was deleted.
    pub item: HiddenItem,
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

impl HiddenItem {
    /// A removed item as the document held it (its server fields apart), removed at `at`.
    pub fn from_removed(r: &tafel_protocol::document::RemovedItem, at: u64) -> HiddenItem {
        let mut held = HiddenItem {
            texts: r.texts.clone(),
            hidden_at: at,
            ..HiddenItem::default()
        };
        for (k, v) in &r.fields {
            match k.as_str() {
                "owner" => held.owner = v.as_str().map(str::to_owned),
                "author" => held.author = v.as_str().map(str::to_owned),
                "votes" => held.votes = v.as_f64(),
                "hidden" | "mergedInto" => {}
                _ => {
                    held.fields.insert(k.clone(), v.clone());
                }
            }
        }
        held
    }
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
            trash: BTreeMap::new(),
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
            private_writing: self.private_writing,
        }
    }

    /// The public part, as mirrored into `control/session` (no ballots, drafts, names or audit;
    /// of the drafts only how many are handed in, `draftsIn`, never whose).
    pub fn session_json(&self, now_ms: u64) -> serde_json::Value {
        serde_json::json!({
            "step": self.step,
            "phase": self.phase,
            "authorMode": self.author_mode,
            "privateWriting": self.private_writing,
            "draftsIn": self.drafts.len(),
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

    /// Keeps a deleted item for its deleter, dropping what is older than `TRASH_MS` and, past
    /// `TRASH_MAX`, the oldest.
    pub fn keep_deleted(&mut self, key: String, by: &str, item: HiddenItem, now_ms: u64) {
        self.trash
            .retain(|_, t| t.item.hidden_at + TRASH_MS > now_ms);
        self.trash.insert(
            key,
            Trashed {
                by: by.to_owned(),
                item,
            },
        );
        while self.trash.len() > TRASH_MAX {
            let oldest = self
                .trash
                .iter()
                .min_by_key(|(k, t)| (t.item.hidden_at, (*k).clone()))
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.trash.remove(&k),
                None => break,
            };
        }
    }

    /// The held items as the facilitator sees them, oldest first.
    pub fn hidden_json(&self) -> Value {
        let mut items: Vec<(&String, &HiddenItem)> = self.hidden.iter().collect();
        items.sort_by_key(|(k, h)| (h.hidden_at, (*k).clone()));
        json!(items
            .into_iter()
            .map(|(key, h)| {
                let (doc, id) = key.split_once('/').unwrap_or(("canvas", key.as_str()));
                json!({
                    "doc": doc,
                    "id": id,
                    "fields": h.fields,
                    "texts": h.texts,
                    "owner": h.owner,
                    "author": h.author,
                    "votes": h.votes,
                    "mergedInto": h.merged_into,
                    "hiddenAt": h.hidden_at,
                })
            })
            .collect::<Vec<_>>())
    }

    /// A round as every role may see it: totals only after the reveal, never ballots.
    pub fn round_json(round: &Round) -> serde_json::Value {
        serde_json::json!({
            "title": round.title,
            "items": round.cards,
            // The canvas cards among the items, by their bare id (what older clients read).
            "cards": round.cards.iter().filter_map(|k| k.strip_prefix("canvas/")).collect::<Vec<_>>(),
            "budget": round.budget,
            "maxPerCard": round.max_per_card,
            "status": round.status,
            "voters": round.ballots.values().filter(|b| b.values().any(|n| *n > 0)).count(),
            "totals": round.totals,
            "ranking": super::commands::ranking(round),
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

/// An invite link: it invites a role, not a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invite {
    pub id: String,
    pub role: Role,
    pub created_at: u64,
    pub expires_at: u64,
    /// The most joins it allows (None: no limit).
    #[serde(default)]
    pub seats: Option<u32>,
    /// How many people joined through it.
    #[serde(default)]
    pub joined: u32,
    /// When the facilitator revoked it (no more joins from then on).
    #[serde(default)]
    pub revoked_at: Option<u64>,
}

impl Invite {
    pub fn json(&self, now: u64) -> Value {
        json!({
            "id": self.id,
            "role": self.role,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "expired": self.expires_at <= now,
            "seats": self.seats,
            "joined": self.joined,
            "revoked": self.revoked_at.is_some(),
            "revoked_at": self.revoked_at,
        })
    }
}

/// A participant as the facilitator's list shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub role: Role,
    /// An employee's pseudonym; for other roles the name they chose.
    pub display: String,
    pub first_seen: u64,
    /// The invite they joined through, if any.
    #[serde(default)]
    pub invite: Option<String>,
}
