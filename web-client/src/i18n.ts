// Interface texts: one file per language in lang/ (nl.ts, the default and the source of the keys;
// en.ts), `t(key, vars)` to look one up, and the current language (kept in localStorage, mirrored
// to html[lang]). Template content (sections, themes, staalkaart) is data from the server.

import { nl, type Key } from './lang/nl'
import { en } from './lang/en'

export type Lang = 'nl' | 'en'

export type { Key }

const dictionaries: Record<Lang, Record<Key, string>> = { nl, en }
const listeners = new Set<() => void>()

function initialLang(): Lang {
  try {
    return localStorage.getItem('tafel:lang') === 'en' ? 'en' : 'nl'
  } catch {
    return 'nl'
  }
}

let current: Lang = initialLang()
document.documentElement.lang = current

export function lang(): Lang {
  return current
}

export function setLang(next: Lang): void {
  current = next
  document.documentElement.lang = next
  try {
    localStorage.setItem('tafel:lang', next)
  } catch {
    // private mode: the choice lasts for this page only
  }
  for (const l of listeners) l()
}

/** Calls `fn` after every language change; returns the unsubscribe. */
export function onLangChange(fn: () => void): () => void {
  listeners.add(fn)
  return () => listeners.delete(fn)
}

export function t(key: Key, vars: Record<string, string | number> = {}): string {
  const text = dictionaries[current][key] ?? nl[key] ?? key
  return text.replace(/\{(\w+)\}/g, (_, name: string) => String(vars[name] ?? `{${name}}`))
}
