//! The role rules shared by the judge and the server's own commands (`protocol/src/rights.rs`):
//! the case the cargo-mutants run found without a protocol test (docs/testing.md, "Mutation
//! testing"). `Seat::may_add` decides whether an item may be put (back) into a section, as when
//! a participant restores their deleted card.

use tafel_protocol::judge::Code;
use tafel_protocol::policy::SessionPolicy;
use tafel_protocol::rights::Seat;
use tafel_protocol::template::Template;
use tafel_protocol::{DocName, Role};

fn template() -> Template {
    Template::from_json(include_str!(
        "../../server/templates/cao-di-organisatie.json"
    ))
    .expect("the template parses")
}

#[test]
fn putting_an_item_into_a_section_follows_its_add_list_and_its_lock() {
    let t = template();
    let open = SessionPolicy::default();
    let seat = |role: Role, session: &SessionPolicy| -> Result<(), Code> {
        Seat {
            doc: DocName::Canvas,
            role,
            template: &t,
            session,
        }
        .may_add(Some("opdracht"))
        .map_err(|r| r.code)
    };
    // `opdracht` takes new items from the facilitator only.
    assert_eq!(seat(Role::Facilitator, &open), Ok(()));
    assert_eq!(seat(Role::Employer, &open), Err(Code::RoleNotAllowed));
    let themas = |role: Role, session: &SessionPolicy| {
        Seat {
            doc: DocName::Canvas,
            role,
            template: &t,
            session,
        }
        .may_add(Some("themas"))
        .map_err(|r| r.code)
    };
    assert_eq!(themas(Role::Employee, &open), Ok(()));
    let mut locked = SessionPolicy::default();
    locked.locked_sections.insert("themas".into());
    assert_eq!(themas(Role::Employee, &locked), Err(Code::SectionLocked));
    assert_eq!(themas(Role::Facilitator, &locked), Ok(()));
    // No section, or one the template does not have.
    for section in [None, Some("nergens")] {
        let r = Seat {
            doc: DocName::Canvas,
            role: Role::Employee,
            template: &t,
            session: &open,
        }
        .may_add(section);
        assert_eq!(
            r.map_err(|r| r.code),
            Err(Code::InvalidValue),
            "{section:?}"
        );
    }
}
