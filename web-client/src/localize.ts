// A template in the user's language: the template's own texts are Dutch; its `translations`
// (server/templates/*.json, checked by protocol/src/template.rs) give other languages by the ids
// of its sections, steps, phases, pijlers, types, themes and staalkaart examples. What a
// translation leaves out stays Dutch.

import type { Lang } from './i18n'
import type { Named, Template } from './types'

interface NameText { name: string; description?: string }
interface TitleText { title: string; hint?: string; description?: string }
export interface Translation {
  title?: string
  description?: string
  sections?: Record<string, TitleText>
  steps?: Record<string, string>
  phases?: string[]
  pijlers?: Record<string, NameText>
  types?: Record<string, NameText>
  themes?: Record<string, NameText>
  staalkaart?: Record<string, TitleText>
}

function named(list: Named[], tr: Record<string, NameText> | undefined): Named[] {
  return list.map((n) => tr?.[n.id] ? { ...n, name: tr[n.id].name, description: tr[n.id].description || n.description } : n)
}

/** The template with the texts of `lang` where it has them (Dutch: the template as it is). */
export function localize(template: Template, lang: Lang): Template {
  const tr = template.translations?.[lang]
  if (lang === 'nl' || !tr) return template
  return {
    ...template,
    title: tr.title ?? template.title,
    description: tr.description ?? template.description,
    sections: template.sections.map((s) => tr.sections?.[s.id]
      ? { ...s, title: tr.sections[s.id].title, hint: tr.sections[s.id].hint || s.hint }
      : s),
    steps: template.steps.map((s) => ({ ...s, title: tr.steps?.[s.id] ?? s.title })),
    phases: tr.phases?.length === template.phases.length ? tr.phases : template.phases,
    pijlers: named(template.pijlers, tr.pijlers),
    types: named(template.types, tr.types),
    themes: named(template.themes, tr.themes),
    staalkaart: template.staalkaart.map((e) => tr.staalkaart?.[e.id]
      ? { ...e, title: tr.staalkaart[e.id].title, description: tr.staalkaart[e.id].description || e.description }
      : e),
    themeNames: Object.fromEntries(Object.entries(tr.themes ?? {}).map(([id, n]) => [id, n.name])),
  }
}
