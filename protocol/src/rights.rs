//! What a role may do with the items of `canvas` and `gap`, section by section, under the
//! facilitator's locks: one definition, used by the judge on every incoming update and by the
//! server's own commands that act for a participant (moving a card between sections, restoring
//! one's deleted card), so a command never allows what a direct edit may not. Pure: the
//! template, the session and the writer's role in; a refusal with its stable code out.

use crate::ids::DocName;
use crate::judge::{Code, Refusal};
use crate::policy::SessionPolicy;
use crate::roles::Role;
use crate::template::{Rules, Template};

/// Who acts, on which document, under which template and session.
#[derive(Clone, Copy)]
pub struct Seat<'a> {
    pub doc: DocName,
    pub role: Role,
    pub template: &'a Template,
    pub session: &'a SessionPolicy,
}

fn refuse<T>(code: Code, reason: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::new(code, reason))
}

impl Seat<'_> {
    pub fn facilitator(&self) -> bool {
        self.role == Role::Facilitator
    }

    /// The rules of a section (canvas) or of every row (gap), with the name refusals use.
    pub fn rules(&self, section: Option<&str>) -> Result<(String, Rules), Refusal> {
        if self.doc == DocName::Gap {
            return Ok(("gap".into(), self.template.gap.clone()));
        }
        let Some(section) = section else {
            return refuse(Code::InvalidValue, "section: a card needs a section");
        };
        match self.template.section(section) {
            Some(s) => Ok((section.to_owned(), s.rules())),
            None => refuse(
                Code::InvalidValue,
                format!("section: unknown section {section:?}"),
            ),
        }
    }

    /// Whether the role is among `roles` and `section` is not locked (the facilitator always).
    pub fn allowed(&self, roles: &[Role], what: &str, section: &str) -> Result<(), Refusal> {
        if self.facilitator() {
            return Ok(());
        }
        if !roles.contains(&self.role) {
            return refuse(
                Code::RoleNotAllowed,
                format!("the {} role may not {what} in {section}", self.role),
            );
        }
        if self.session.locked_sections.contains(section) {
            return refuse(
                Code::SectionLocked,
                format!("section {section} is locked by the facilitator"),
            );
        }
        Ok(())
    }

    /// The board-wide and document locks (the facilitator is bound by neither).
    pub fn open(&self) -> Result<(), Refusal> {
        if self.facilitator() {
            return Ok(());
        }
        if self.session.board_locked {
            return refuse(Code::BoardLocked, "the board is locked by the facilitator");
        }
        if self.session.locked_docs.contains(self.doc.as_str()) {
            return refuse(
                Code::DocLocked,
                format!("{} is locked by the facilitator", self.doc.as_str()),
            );
        }
        Ok(())
    }

    /// Editing an item in `section`; `owns` is asked only where only authors may edit.
    pub fn may_edit(
        &self,
        section: Option<&str>,
        owns: impl FnOnce() -> bool,
    ) -> Result<(), Refusal> {
        let (name, rules) = self.rules(section)?;
        self.allowed(&rules.edit, "edit items", &name)?;
        if !self.facilitator() && rules.edit_own_only && !owns() {
            return refuse(
                Code::NotYourItem,
                format!("in {name} you may only edit your own items"),
            );
        }
        Ok(())
    }

    /// Removing an item from `section`: only one's own (the facilitator any).
    pub fn may_remove(
        &self,
        section: Option<&str>,
        owns: impl FnOnce() -> bool,
    ) -> Result<(), Refusal> {
        let (name, rules) = self.rules(section)?;
        self.allowed(&rules.remove, "remove items", &name)?;
        if !self.facilitator() && !owns() {
            return refuse(Code::NotYourItem, "you may only remove your own items");
        }
        Ok(())
    }

    /// Putting an item into `section` (a new one, or one brought back).
    pub fn may_add(&self, section: Option<&str>) -> Result<(), Refusal> {
        let (name, rules) = self.rules(section)?;
        self.allowed(&rules.add, "add items", &name)
    }

    /// Moving a card from `from` to `to`: the locks, `edit` where it is and `add` where it goes
    /// (what the judge asks of a direct write of `section`).
    pub fn may_move(
        &self,
        from: Option<&str>,
        owns: impl FnOnce() -> bool,
        to: &str,
    ) -> Result<(), Refusal> {
        self.open()?;
        self.may_edit(from, owns)?;
        let (name, rules) = self.rules(Some(to))?;
        self.allowed(&rules.add, "move items into", &name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Template {
        Template::from_json(include_str!(
            "../../server/templates/cao-di-organisatie.json"
        ))
        .expect("the built-in template is valid")
    }

    fn seat<'a>(role: Role, t: &'a Template, s: &'a SessionPolicy) -> Seat<'a> {
        Seat {
            doc: DocName::Canvas,
            role,
            template: t,
            session: s,
        }
    }

    #[test]
    fn moves_need_edit_where_it_is_and_add_where_it_goes() {
        let t = template();
        let s = SessionPolicy::default();
        let emp = seat(Role::Employee, &t, &s);
        assert!(emp.may_move(Some("themas"), || true, "bouwstenen").is_ok());
        let code = |r: Result<(), Refusal>| r.map_err(|e| e.code).err();
        assert_eq!(
            code(emp.may_move(Some("themas"), || true, "analyse")),
            Some(Code::RoleNotAllowed)
        );
        assert_eq!(
            code(emp.may_move(Some("themas"), || false, "bouwstenen")),
            Some(Code::NotYourItem)
        );
        assert_eq!(
            code(emp.may_move(Some("themas"), || true, "nergens")),
            Some(Code::InvalidValue)
        );
        let locked = SessionPolicy {
            locked_sections: ["bouwstenen".to_owned()].into(),
            ..SessionPolicy::default()
        };
        let emp = seat(Role::Employee, &t, &locked);
        assert_eq!(
            code(emp.may_move(Some("themas"), || true, "bouwstenen")),
            Some(Code::SectionLocked)
        );
        let fac = seat(Role::Facilitator, &t, &locked);
        assert!(fac.may_move(Some("themas"), || false, "bouwstenen").is_ok());
        let board = SessionPolicy {
            board_locked: true,
            ..SessionPolicy::default()
        };
        assert_eq!(
            code(seat(Role::Employer, &t, &board).may_move(Some("analyse"), || true, "rollen")),
            Some(Code::BoardLocked)
        );
    }
}
