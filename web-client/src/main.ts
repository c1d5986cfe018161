// Entry point and routing: `/#token=T` (a facilitator's all-boards token) shows the board list;
// `/?board=B#token=T` (an invite) asks for a name on first visit, joins, keeps the new token and
// opens the board; `/?board=B` opens it with the kept token. See TESTIDS.md for the contract.

import './style.css'
import { Api, ApiError } from './api'
import { openBoard } from './board'
import {
  decodeToken, facilitatorToken, forgetToken, isExpired, keepFacilitatorToken, keepToken, keptToken,
  saveName, savedName, takeFragmentToken,
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
  return t('app.error', { msg: e instanceof Error ? e.message : String(e) })
}

async function showBoardList(token: string): Promise<void> {
  const api = new Api(token)
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
  const api = new Api(token)
  let info
  try {
    info = await api.board(board)
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) forgetToken(board)
    throw e
  }
  const claims = decodeToken(token)
  if (!claims?.name) {
    simplePage(() => createNamePrompt({
      board: info.title,
      initial: savedName(),
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
      // An invite link: keep using the token of the same person (named already) if there is one.
      token = kept && keptClaims && keptClaims.sub === freshClaims?.sub && !isExpired(keptClaims) ? kept : fresh
    } else {
      token = kept && keptClaims && !isExpired(keptClaims) ? kept : facilitatorToken()
    }
    if (!token) return message(t('app.noToken'))
    return showBoard(board, token, !!facilitatorToken())
  }

  if (fresh && freshClaims && freshClaims.board !== '*') {
    // A board token without ?board=: open its board.
    keepToken(freshClaims.board, fresh)
    location.replace(boardUrl(freshClaims.board))
    return
  }
  const fac = facilitatorToken()
  if (!fac) return message(t('app.noToken'))
  return showBoardList(fac)
}

start().catch((e: unknown) => message(problem(e)))
