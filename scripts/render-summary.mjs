// Renders what the step shows on a run's page to a standalone HTML page, for scripts/screenshots.sh to screenshot:
//
//   node scripts/render-summary.mjs summary IN.md OUT.html [--title TEXT]
//       a job summary (GitHub-Flavored Markdown, read by marked with gfm) in a "nix-offload summary" box, styled by
//       github-markdown-css (light theme), about as wide as the summary pane of a run's page
//   node scripts/render-summary.mjs annotation IN.txt OUT.html
//       the `::error …::…` / `::warning …::…` / `::notice …::…` workflow-command lines a step printed, as the
//       "Annotations" box of a run's summary page shows them
//
// Raw HTML in the Markdown is kept only for the few attribute-less tags a summary uses (<details>, <summary>, <br>, …);
// any other tag is shown as text, like an annotation's message, which is always text.
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import console from 'node:console'
import process from 'node:process'
import { Marked } from 'marked'

/** The width of the page's content, in CSS pixels: that of the summary pane of a run's page on a laptop screen. */
export const CONTENT_WIDTH = 1012
/** The page's margin around the content, in CSS pixels (the page is CONTENT_WIDTH + 2 × PAGE_PADDING wide). */
export const PAGE_PADDING = 16

export function escapeHtml(text) {
  return String(text)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;')
}

// The tags GitHub keeps in a job summary that a summary of this action may use; attributes are not kept but `open`.
const KEPT_TAGS = new Set(
  'details summary br b i em strong code kbd sub sup s del ins p pre blockquote ul ol li hr div span'.split(
    ' '
  )
)

/** Raw HTML from the Markdown: each kept tag as is, any other tag (or a lone `<`) as text. */
export function sanitizeHtml(html) {
  return html.replace(/<(\/?)([A-Za-z][\w-]*)([^<>]*)>|</g, (match, _slash, name, attributes) => {
    if (name !== undefined && KEPT_TAGS.has(name.toLowerCase()) && /^\s*(open\s*)?\/?$/i.test(attributes)) {
      return match
    }
    return escapeHtml(match)
  })
}

const markdown = new Marked({ gfm: true, renderer: { html: ({ text }) => sanitizeHtml(text) } })

/** A job summary's Markdown, rendered as GitHub would (GFM), as HTML. */
export function renderMarkdown(source) {
  return markdown.parse(source, { async: false })
}

function markdownCss() {
  const require = createRequire(import.meta.url)
  return readFileSync(require.resolve('github-markdown-css/github-markdown-light.css'), 'utf8')
}

// The page around the content: GitHub's light page colours and system fonts.
const PAGE_CSS = `
html { background: #ffffff; }
body {
  margin: 0;
  padding: ${PAGE_PADDING}px;
  width: ${CONTENT_WIDTH}px;
  background: #ffffff;
  color: #1f2328;
  font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif,
    "Apple Color Emoji", "Segoe UI Emoji", "Noto Color Emoji";
  font-size: 14px;
  line-height: 1.5;
}
.box { border: 1px solid #d1d9e0; border-radius: 6px; background: #ffffff; }
.box-header {
  padding: 16px 24px;
  border-bottom: 1px solid #d1d9e0;
  font-size: 16px;
  font-weight: 600;
}
`

function page(title, css, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
${css}
</style>
</head>
<body>
${body}
</body>
</html>
`
}

const SUMMARY_CSS = `
.markdown-body { padding: 24px; font-size: 14px; }
.markdown-body table { font-size: 14px; }
`

/** A standalone HTML page that shows a job summary as a run's page does, in a box headed `title`. */
export function summaryPage(source, { title = 'nix-offload summary' } = {}) {
  const body = `<div class="box">
<div class="box-header">${escapeHtml(title)}</div>
<article class="markdown-body">
${renderMarkdown(source)}
</article>
</div>`
  return page(title, `${markdownCss()}\n${PAGE_CSS}\n${SUMMARY_CSS}`, body)
}

/** A workflow command's message, decoded as the runner does (actions/runner's ActionCommand.UnescapeData). */
export function unescapeData(text) {
  return text.replace(/%(25|0D|0A)/g, (_, code) => String.fromCharCode(parseInt(code, 16)))
}

/** A workflow command's property value, decoded as the runner does (ActionCommand.UnescapeProperty). */
export function unescapeProperty(text) {
  return text.replace(/%(25|0D|0A|3A|2C)/g, (_, code) => String.fromCharCode(parseInt(code, 16)))
}

const LEVELS = ['error', 'warning', 'notice']

/**
 * The annotations in a step's log: every `::error|warning|notice [k=v,…]::message` line, read as the runner reads a
 * workflow command (the command's name ends at the first space, its properties at the first `::`).
 */
export function parseAnnotations(log) {
  const annotations = []
  for (const rawLine of log.split('\n')) {
    const line = rawLine.replace(/\r$/, '').trimStart()
    if (!line.startsWith('::')) continue
    const end = line.indexOf('::', 2)
    if (end < 0) continue
    const info = line.slice(2, end)
    const space = info.indexOf(' ')
    const level = (space < 0 ? info : info.slice(0, space)).toLowerCase()
    if (!LEVELS.includes(level)) continue
    const properties = {}
    if (space >= 0) {
      for (const pair of info.slice(space + 1).split(',')) {
        if (pair.trim() === '') continue
        const equals = pair.indexOf('=')
        if (equals <= 0) continue
        properties[pair.slice(0, equals).trim()] = unescapeProperty(pair.slice(equals + 1))
      }
    }
    annotations.push({
      level,
      title: properties.title,
      properties,
      message: unescapeData(line.slice(end + 2))
    })
  }
  return annotations
}

// Icons drawn like GitHub's octicons (x-circle, alert, info), 16 × 16, in the level's colour.
const ICONS = {
  error:
    '<circle cx="8" cy="8" r="6.75" fill="none" stroke="currentColor" stroke-width="1.5"/>' +
    '<path d="M5.6 5.6l4.8 4.8M10.4 5.6l-4.8 4.8" stroke="currentColor" stroke-width="1.5" stroke-linecap="round"/>',
  warning:
    '<path d="M8 1.9 14.6 13.6H1.4Z" fill="none" stroke="currentColor" stroke-width="1.4" stroke-linejoin="round"/>' +
    '<path d="M8 6v3.6" stroke="currentColor" stroke-width="1.5" stroke-linecap="round"/>' +
    '<circle cx="8" cy="11.6" r=".9" fill="currentColor"/>',
  notice:
    '<circle cx="8" cy="8" r="6.75" fill="none" stroke="currentColor" stroke-width="1.5"/>' +
    '<path d="M8 7.2v4" stroke="currentColor" stroke-width="1.5" stroke-linecap="round"/>' +
    '<circle cx="8" cy="4.9" r=".9" fill="currentColor"/>'
}
const LABELS = { error: 'Error', warning: 'Warning', notice: 'Notice' }

const ANNOTATION_CSS = `
.box-header .count { margin-top: 2px; font-size: 12px; font-weight: 400; color: #59636e; }
.annotation { display: flex; gap: 8px; padding: 12px 24px; }
.annotation + .annotation { border-top: 1px solid #d1d9e0; }
.annotation svg { flex: none; width: 16px; height: 16px; margin-top: 2px; }
.annotation.error svg { color: #d1242f; }
.annotation.warning svg { color: #9a6700; }
.annotation.notice svg { color: #0969da; }
.annotation .text { min-width: 0; }
.annotation .title { font-weight: 600; overflow-wrap: anywhere; }
.annotation .message {
  margin-top: 2px;
  color: #1f2328;
  font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", monospace;
  font-size: 12px;
  line-height: 20px;
  white-space: pre-wrap;
  overflow-wrap: anywhere;
}
`

function countLine(annotations) {
  const parts = LEVELS.map(level => {
    const n = annotations.filter(annotation => annotation.level === level).length
    return n === 0 ? '' : `${n} ${level}${n === 1 ? '' : 's'}`
  }).filter(part => part !== '')
  return parts.length <= 1 ? (parts[0] ?? 'none') : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`
}

/** A standalone HTML page that shows annotations as the "Annotations" box of a run's summary page does. */
export function annotationPage(annotations) {
  const rows = annotations.map(
    ({ level, title, message }) => `<div class="annotation ${level}">
<svg viewBox="0 0 16 16" aria-hidden="true">${ICONS[level]}</svg>
<div class="text">
<div class="title">${escapeHtml(title === undefined || title === '' ? LABELS[level] : title)}</div>
<div class="message">${escapeHtml(message)}</div>
</div>
</div>`
  )
  const body = `<div class="box">
<div class="box-header">Annotations<div class="count">${escapeHtml(countLine(annotations))}</div></div>
${rows.join('\n')}
</div>`
  return page('Annotations', `${PAGE_CSS}\n${ANNOTATION_CSS}`, body)
}

function main(argv) {
  const usage =
    'usage: render-summary.mjs summary IN.md OUT.html [--title TEXT]\n' +
    '       render-summary.mjs annotation IN.txt OUT.html'
  const [mode, input, output, ...rest] = argv
  if (input === undefined || output === undefined || !['summary', 'annotation'].includes(mode)) {
    console.error(usage)
    return 2
  }
  const options = {}
  for (let i = 0; i < rest.length; i++) {
    if (mode === 'summary' && rest[i] === '--title' && rest[i + 1] !== undefined) options.title = rest[++i]
    else {
      console.error(`render-summary.mjs: unknown argument ${rest[i]}\n${usage}`)
      return 2
    }
  }
  const text = readFileSync(input, 'utf8')
  if (mode === 'summary') {
    writeFileSync(output, summaryPage(text, options))
  } else {
    const annotations = parseAnnotations(text)
    if (annotations.length === 0) {
      console.error(`render-summary.mjs: no ::error, ::warning or ::notice line in ${input}`)
      return 1
    }
    writeFileSync(output, annotationPage(annotations))
  }
  return 0
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2))
}
