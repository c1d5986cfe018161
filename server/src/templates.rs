//! The board templates offered by `GET /api/templates`. For now a board is created with empty
//! documents whatever template it names; the templates' content (sections, themes, staalkaart)
//! comes as data files in a later step.

pub struct Template {
    pub id: &'static str,
    pub title: &'static str,
}

pub const TEMPLATES: &[Template] = &[
    Template {
        id: "cao-di-organisatie",
        title: "CAO-DI canvas en gap-analyse — organisatie",
    },
    Template {
        id: "cao-di-sector",
        title: "CAO-DI canvas en gap-analyse — sector",
    },
];
