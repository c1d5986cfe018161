//! The board's domain apart from HTTP: the facilitator's session commands as typed values, and
//! `apply(state, command, now)`, which decides each command that only changes the board's
//! server-side state — pure: no IO, no clock, no store; the caller persists the state and
//! mirrors it into `control`. Commands that also change documents (reveals, rounds over canvas
//! cards, moderation) are answered `Applied::WithDocuments` and carried out by the session
//! handlers, which run the server's own Yjs edits through the document actors.

use serde::Deserialize;
use serde_json::{json, Value};
use tafel_protocol::policy::STEPS;
use tafel_protocol::template::Template;
use tafel_protocol::{DocName, ErrorCode};
use yrs::Any;

use crate::board::{AuditEntry, AuthorMode, BoardState, Participant};
use crate::edge::AppError;

/// A JSON value as a Yjs value (server edits write plain data with it).
pub fn any(v: Value) -> Any {
    serde_json::from_value(v).unwrap_or(Any::Null)
}

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Command {
    Step {
        step: String,
    },
    Phase {
        phase: String,
    },
    Timer {
        op: String,
        #[serde(default)]
        seconds: Option<u64>,
    },
    Lock {
        scope: String,
        #[serde(default)]
        target: Option<String>,
        locked: bool,
    },
    Presentation {
        on: bool,
        #[serde(default)]
        focus: Option<Value>,
    },
    AuthorMode {
        mode: AuthorMode,
    },
    PrivateWriting {
        on: bool,
    },
    RevealDrafts,
    OpenRound {
        title: String,
        cards: Vec<String>,
        budget: u32,
        #[serde(default)]
        max_per_card: Option<u32>,
    },
    CloseRound {
        round: String,
    },
    RevealRound {
        round: String,
    },
    Hide {
        #[serde(default)]
        card: Option<String>,
        #[serde(default)]
        row: Option<String>,
    },
    Restore {
        #[serde(default)]
        card: Option<String>,
        #[serde(default)]
        row: Option<String>,
    },
    Merge {
        #[serde(default)]
        card: Option<String>,
        #[serde(default)]
        row: Option<String>,
        into: String,
    },
}

/// What `apply` decided.
#[derive(Debug, PartialEq)]
pub enum Applied {
    /// The state changed (and was audited); nothing else to do but persist and mirror.
    Done,
    /// The author setting changed: every card's and row's `author` must be rewritten.
    AuthorMode(AuthorMode),
    /// The command changes documents too: the caller carries it out.
    WithDocuments,
}

fn bad(msg: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::BadRequest, msg)
}

/// Appends an audit entry (the facilitator's log; the `sub` never leaves it).
pub fn audit(st: &mut BoardState, who: &Participant, action: &str, detail: Value, now_ms: u64) {
    st.audit.push(AuditEntry {
        at: now_ms / 1000,
        sub: who.sub.clone(),
        name: who.name.clone(),
        role: who.role,
        action: action.to_owned(),
        detail,
    });
}

/// Decides one command on the board's state at time `now_ms` (ms since the epoch). On `Err` the
/// state is unchanged.
pub fn apply(
    st: &mut BoardState,
    template: &Template,
    who: &Participant,
    cmd: &Command,
    now_ms: u64,
) -> Result<Applied, AppError> {
    match cmd {
        Command::Step { step } => {
            if !STEPS.contains(&step.as_str()) {
                return Err(bad(format!("step must be one of {STEPS:?}")));
            }
            audit(st, who, "step", json!({"step": step}), now_ms);
            st.step = step.clone();
        }
        Command::Phase { phase } => {
            if phase.chars().count() > 80 {
                return Err(bad("a phase name is at most 80 characters"));
            }
            audit(st, who, "phase", json!({"phase": phase}), now_ms);
            st.phase = phase.clone();
        }
        Command::Timer { op, seconds } => {
            let mut timer = st.timer.clone();
            match op.as_str() {
                "start" => {
                    let duration = match seconds {
                        Some(s) if (1..=86_400).contains(s) => s * 1000,
                        Some(_) => return Err(bad("seconds must be 1 to 86400")),
                        None if timer.status == "paused" => timer.remaining_ms.unwrap_or(0),
                        None => return Err(bad("start needs seconds")),
                    };
                    if seconds.is_some() {
                        timer.duration_ms = duration;
                    }
                    timer.status = "running".into();
                    timer.ends_at = Some(now_ms + duration);
                    timer.remaining_ms = None;
                }
                "pause" => {
                    let left = timer.ends_at.map_or(0, |e| e.saturating_sub(now_ms));
                    timer.status = "paused".into();
                    timer.remaining_ms = Some(left);
                    timer.ends_at = None;
                }
                "reset" => {
                    timer.status = "stopped".into();
                    timer.ends_at = None;
                    timer.remaining_ms = None;
                }
                _ => return Err(bad("op must be start, pause or reset")),
            }
            st.timer = timer;
            audit(
                st,
                who,
                "timer",
                json!({"op": op, "seconds": seconds}),
                now_ms,
            );
        }
        Command::Lock {
            scope,
            target,
            locked,
        } => {
            match (scope.as_str(), target) {
                ("board", _) => st.board_locked = *locked,
                ("doc", Some(d)) if DocName::parse(d).is_ok() => {
                    if *locked {
                        st.locked_docs.insert(d.clone());
                    } else {
                        st.locked_docs.remove(d);
                    }
                }
                ("section", Some(s)) if template.section(s).is_some() => {
                    if *locked {
                        st.locked_sections.insert(s.clone());
                    } else {
                        st.locked_sections.remove(s);
                    }
                }
                _ => return Err(bad(
                    "scope is board, doc (target: a document) or section (target: a section id)",
                )),
            }
            let action = if *locked { "lock" } else { "unlock" };
            audit(
                st,
                who,
                action,
                json!({"scope": scope, "target": target}),
                now_ms,
            );
        }
        Command::Presentation { on, focus } => {
            st.presentation = *on;
            st.focus = focus.clone().unwrap_or(Value::Null);
            audit(
                st,
                who,
                "presentation",
                json!({"on": on, "focus": focus}),
                now_ms,
            );
        }
        Command::AuthorMode { mode } => {
            st.author_mode = *mode;
            audit(st, who, "author-mode", json!({"mode": mode}), now_ms);
            return Ok(Applied::AuthorMode(*mode));
        }
        Command::PrivateWriting { on } => {
            st.private_writing = *on;
            audit(st, who, "private-writing", json!({"on": on}), now_ms);
        }
        Command::CloseRound { round } => {
            let Some(r) = st.rounds.get_mut(round) else {
                return Err(AppError::new(ErrorCode::NotFound, "no such round"));
            };
            r.status = "closed".into();
            audit(st, who, "round-close", json!({"round": round}), now_ms);
        }
        _ => return Ok(Applied::WithDocuments),
    }
    Ok(Applied::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tafel_protocol::Role;

    fn template() -> Template {
        Template::from_json(include_str!("../templates/cao-di-organisatie.json")).unwrap()
    }

    fn fac() -> Participant {
        Participant {
            sub: "f".into(),
            role: Role::Facilitator,
            name: "Fien".into(),
            display: "Fien".into(),
            tag: tafel_protocol::index::Owner::Server,
        }
    }

    #[test]
    fn state_commands_are_decided_without_io() {
        let t = template();
        let mut st = BoardState::default();
        let step = Command::Step { step: "3A".into() };
        assert_eq!(
            apply(&mut st, &t, &fac(), &step, 1_000).ok(),
            Some(Applied::Done)
        );
        assert_eq!(st.step, "3A");
        assert_eq!(st.audit.len(), 1);
        let start = Command::Timer {
            op: "start".into(),
            seconds: Some(60),
        };
        apply(&mut st, &t, &fac(), &start, 10_000).unwrap();
        assert_eq!(st.timer.ends_at, Some(70_000));
        let pause = Command::Timer {
            op: "pause".into(),
            seconds: None,
        };
        apply(&mut st, &t, &fac(), &pause, 40_000).unwrap();
        assert_eq!(st.timer.remaining_ms, Some(30_000));
        // A refused command leaves the state as it was.
        let before = st.clone();
        let bad_lock = Command::Lock {
            scope: "section".into(),
            target: Some("nergens".into()),
            locked: true,
        };
        assert!(apply(&mut st, &t, &fac(), &bad_lock, 50_000).is_err());
        assert_eq!(st, before);
        let mode = Command::AuthorMode {
            mode: AuthorMode::Name,
        };
        assert_eq!(
            apply(&mut st, &t, &fac(), &mode, 60_000).ok(),
            Some(Applied::AuthorMode(AuthorMode::Name))
        );
        assert_eq!(
            apply(&mut st, &t, &fac(), &Command::RevealDrafts, 60_000).ok(),
            Some(Applied::WithDocuments)
        );
    }
}
