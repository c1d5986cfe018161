// Small DOM helpers for the views: `h()` to build elements, setters that touch the DOM only when
// a value changed (so a re-render never disturbs focus or the caret), and a keyed list
// reconciler that keeps existing elements and moves them only when out of place.

type Child = Node | string | null | undefined | false
type Handler = (ev: Event) => void
export interface Props {
  [key: string]: string | number | boolean | Handler | undefined | null
}

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'readOnly', 'selected', 'type'])

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value as Handler)
    } else if (key === 'testid') {
      el.dataset.testid = String(value)
    } else if (key === 'class') {
      el.className = String(value)
    } else if (key === 'text') {
      el.textContent = String(value)
    } else if (PROPS.has(key)) {
      ;(el as unknown as Record<string, unknown>)[key] = value
    } else {
      el.setAttribute(key, value === true ? '' : String(value))
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    el.append(child)
  }
  return el
}

export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text
}

export function setAttr(el: Element, name: string, value: string | null | boolean): void {
  if (value === null || value === false) {
    if (el.hasAttribute(name)) el.removeAttribute(name)
  } else {
    const v = value === true ? '' : value
    if (el.getAttribute(name) !== v) el.setAttribute(name, v)
  }
}

export function setHidden(el: HTMLElement, hidden: boolean): void {
  if (el.hidden !== hidden) el.hidden = hidden
}

/** Sets the options of a select: replaced when the values changed, relabelled in place when only
 * labels did; keeps `value` when still present. */
export function setOptions(select: HTMLSelectElement, options: [string, string][], value?: string): void {
  const sameValues = select.options.length === options.length && options.every(([v], i) => select.options[i].value === v)
  if (sameValues) {
    // Only labels changed (e.g. a merge target's text being typed): relabel in place, so an open
    // list stays open.
    options.forEach(([, label], i) => {
      if (select.options[i].text !== label) select.options[i].text = label
    })
  } else {
    const keep = value ?? select.value
    select.replaceChildren(...options.map(([v, label]) => h('option', { value: v, text: label })))
    select.value = keep
  }
  if (value !== undefined && select.value !== value && document.activeElement !== select) select.value = value
}

export interface Keyed<T> {
  el: HTMLElement
  update(item: T): void
  destroy?(): void
}

const lists = new WeakMap<HTMLElement, Map<string, Keyed<unknown>>>()

/** Makes `parent`'s children one element per item, in order, reusing elements by key. */
export function reconcile<T>(
  parent: HTMLElement,
  items: T[],
  key: (item: T) => string,
  create: (item: T) => Keyed<T>,
): void {
  let known = lists.get(parent) as Map<string, Keyed<T>> | undefined
  if (!known) {
    known = new Map()
    lists.set(parent, known as Map<string, Keyed<unknown>>)
  }
  const wanted = new Set(items.map(key))
  for (const [k, entry] of known) {
    if (wanted.has(k)) continue
    entry.destroy?.()
    entry.el.remove()
    known.delete(k)
  }
  const active = document.activeElement
  let cursor: ChildNode | null = parent.firstChild
  for (const item of items) {
    const k = key(item)
    let entry = known.get(k)
    if (!entry) {
      entry = create(item)
      known.set(k, entry)
    }
    entry.update(item)
    if (entry.el === cursor) cursor = cursor.nextSibling
    else parent.insertBefore(entry.el, cursor)
  }
  // Moving an element blurs what was focused inside it (a reordered row's button): restore it.
  if (active instanceof HTMLElement && active !== document.activeElement && parent.contains(active)) {
    active.focus()
  }
}

const anchors = new WeakMap<Element, Comment>()

/** Puts `el` in the DOM or takes it out (keeping its place), for elements that must not exist
 * when not applicable (e.g. an add button the role may not use), rather than merely be hidden. */
export function setPresent(el: HTMLElement, present: boolean): void {
  let anchor = anchors.get(el)
  if (!anchor) {
    anchor = document.createComment(el.dataset.testid ?? el.tagName)
    anchors.set(el, anchor)
  }
  if (present && !el.isConnected && anchor.parentNode) anchor.replaceWith(el)
  else if (!present && el.parentNode) el.replaceWith(anchor)
}
