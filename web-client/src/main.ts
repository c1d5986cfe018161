// Entry point and routing: `/#token=T` (a facilitator's all-boards token) shows the board list;
// `/?board=B#token=T` (an invite) asks for a name on first visit, joins, keeps the new token and
// opens the board; `/?board=B` opens it with the kept token. An invite token (claim `inv`) only
// joins: every join through it is a new person with a personal token of their own, which this
// device keeps per board (`tafel:token:{board}`) and reuses — renewing it through POST /join when
// it expired recently — instead of joining again when the link is reopened. See TESTIDS.md.

import './style.css'
import { Api, ApiError } from './api'
import { openBoard } from './board'
import {
  decodeToken, facilitatorToken, forgetToken, isExpired, keepFacilitatorToken, keepToken, keptToken,
  saveName, savedName, takeFragmentToken, usable,
} from './session'
import { h } from './views/dom'
import { createBoardList } from './views/boardlist'
import { createNamePrompt } from './views/nameprompt'
import { lang, onLangChange, setLang, t } from './i18n'

const root = document.getElementById('app') ?? document.body

function boardUrl(id: string): string {
  return `${location.pathname}?board=${encodeURIComponent(id)}`
}

/** A simple page (list, prompt, message) with the language switch; redrawn on a switch. */
function simplePage(draw: () => HTMLElement): void {
  const paint = (): void => {
    const lang_ = h('button', {
      type: 'button', testid: 'lang-switch', class: 'btn btn-small', text: t('lang.switch'),
      'aria-label': t('lang.switchLabel'), onclick: () => setLang(lang() === 'nl' ? 'en' : 'nl'),
    })
    root.replaceChildren(h('div', { class: 'simple-page' },
      h('header', { class: 'board-header' }, h('div', { class: 'topline' },
        h('span', { class: 'brand', text: 'Tafel' }), h('span', { class: 'tagline', text: t('app.tagline') }),
        h('span', { class: 'spacer' }), lang_)),
      draw()))
  }
  stopSimple?.()
  stopSimple = onLangChange(paint)
  paint()
}
let stopSimple: (() => void) | null = null

function message(text: string): void {
  simplePage(() => h('main', { class: 'centered' }, h('p', { class: 'message', role: 'alert', text })))
}

function problem(e: unknown): string {
  if (e instanceof ApiError && e.status === 401) return t('app.tokenExpired')
  if (e instanceof ApiError && e.code === 'removed') return t('app.removed')
  if (e instanceof ApiError && e.code === 'invite-revoked') return t('app.inviteRevoked')
  if (e instanceof ApiError && e.code === 'invite-full') return t('app.inviteFull')
  return t('app.error', { msg: e instanceof Error ? e.message : String(e) })
}

/** The name `tafel serve`'s sign-in link carries: the facilitator has not named themself yet. */
const DEFAULT_FACILITATOR_NAME = 'Facilitator'

async function showBoardList(token: string): Promise<void> {
  const api = new Api(token)
  if (decodeToken(token)?.name === DEFAULT_FACILITATOR_NAME) {
    // The facilitator's own name at sign-in: the audit log and the others' screens show it.
    simplePage(() => createNamePrompt({
      board: '',
      initial: savedName(),
      title: t('name.facilitatorTitle'),
      help: t('name.facilitatorHelp'),
      async submit(name) {
        try {
          const named = await api.signin(name)
          keepFacilitatorToken(named.token)
          saveName(name)
          stopSimple?.()
          await showBoardList(named.token)
          return null
        } catch (e) {
          return problem(e)
        }
      },
    }).el)
    return
  }
  const [boards, templates] = await Promise.all([api.boards(), api.templates()])
  simplePage(() => createBoardList(boards, templates, {
    async create(title, template) {
      try {
        const board = await api.createBoard(title, template)
        location.assign(boardUrl(board.id))
        return null
      } catch (e) {
        return problem(e)
      }
    },
    open: (id) => location.assign(boardUrl(id)),
  }).el)
}

async function showBoard(board: string, token: string, fromList: boolean): Promise<void> {
  let claims = decodeToken(token)
  // A kept personal token that expired recently: renew it (same person) before anything else.
  if (claims && !claims.inv && isExpired(claims) && claims.name) {
    try {
      const renewed = await new Api(token).join(board, claims.name)
      token = renewed.token
      keepToken(board, token)
      claims = decodeToken(token)
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) forgetToken(board)
      throw e
    }
  }
  const api = new Api(token)
  let info
  try {
    info = await api.board(board)
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) forgetToken(board)
    throw e
  }
  if (!claims?.name || claims.inv) {
    // An invite (or a token without a name): each person who joins gets their own identity.
    simplePage(() => createNamePrompt({
      board: info.title,
      initial: savedName() || claims?.name || '',
      async submit(name) {
        try {
          const joined = await api.join(board, name)
          keepToken(board, joined.token)
          saveName(name)
          stopSimple?.()
          await showBoard(board, joined.token, fromList)
          return null
        } catch (e) {
          return problem(e)
        }
      },
    }).el)
    return
  }
  keepToken(board, token)
  stopSimple?.()
  await openBoard(root, info, token, api, fromList || claims.board === '*')
}

async function start(): Promise<void> {
  const board = new URLSearchParams(location.search).get('board')
  const fresh = takeFragmentToken()
  const freshClaims = fresh ? decodeToken(fresh) : null
  if (fresh && freshClaims?.board === '*') keepFacilitatorToken(fresh)

  if (board) {
    const kept = keptToken(board)
    const keptClaims = kept ? decodeToken(kept) : null
    let token: string | null
    if (fresh && freshClaims?.board !== '*') {
      // An invite link reopened on a device that joined through a link of the same role: the
      // same person comes back with their own kept token (renewed when it expired recently).
      const samePerson = !!kept && !!keptClaims && usable(keptClaims) && !!keptClaims.name &&
        keptClaims.board === freshClaims?.board && keptClaims.role === freshClaims?.role
      token = samePerson ? kept : fresh
    } else {
      token = kept && keptClaims && usable(keptClaims) ? kept : facilitatorToken()
    }
    if (!token) return message(t('app.noToken'))
    return showBoard(board, token, !!facilitatorToken())
  }

  if (fresh && freshClaims && freshClaims.board !== '*') {
    // A board token without ?board=: open its board.
    if (freshClaims.inv) {
      // An invite is not kept: it only joins. Carry it along in the fragment.
      location.replace(`${boardUrl(freshClaims.board)}#token=${encodeURIComponent(fresh)}`)
      return
    }
    keepToken(freshClaims.board, fresh)
    location.replace(boardUrl(freshClaims.board))
    return
  }
  const fac = facilitatorToken()
  if (!fac) return message(t('app.noToken'))
  return showBoardList(fac)
}

start().catch((e: unknown) => message(problem(e)))
