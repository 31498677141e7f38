#!/usr/bin/env node
// Typeset every formula of the built site with KaTeX in strict mode; exit 1 on any error.
//
//   node docs/tools/check_math.mjs [SITE_DIR]        (default: site)
//
// `mkdocs build --strict` does not look inside formulas. This script does: it reads every HTML file under
// SITE_DIR, extracts the pymdownx.arithmatex elements (generic mode: <span class="arithmatex">\( … \)</span> and
// <div class="arithmatex">\[ … \]</div>), and renders each with the pinned KaTeX from docs/node_modules,
// throwOnError: true and strict: "error" — so a parse error, an unknown macro or a non-LaTeX character fails the
// check. It also fails when math was left unprocessed in the page text ($$, $\cmd, \begin{ outside code), when
// the site holds no formula at all (a sign that the extraction, not the math, is broken), and when a page or a
// stylesheet loads anything from another host (<script src>, <link href>, <img src>, CSS url() / @import with
// http://, https:// or //): the site must work offline.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "package.json"));
let katex;
try {
  katex = require("katex");
} catch (err) {
  console.error("check_math: KaTeX is not installed in docs/node_modules: run `npm ci --prefix docs` first.");
  process.exit(2);
}

// The options a page uses (docs/javascripts/katex-init.js), made strict.
const OPTIONS = { throwOnError: true, strict: "error", output: "htmlAndMathml" };

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };
function unescapeHtml(s) {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (whole, e) => {
    if (e[0] === "#") return String.fromCodePoint(e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return e in ENTITIES ? ENTITIES[e] : whole;
  });
}

function* filesEnding(dir, suffix) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* filesEnding(path, suffix);
    else if (name.endsWith(suffix)) yield path;
  }
}

// Strip arithmatex's delimiters; the element's tag says display or inline when there are none.
export function extract(raw, tag) {
  const tex = unescapeHtml(raw).trim();
  let m = /^\\\(([\s\S]*)\\\)$/.exec(tex);
  if (m) return { tex: m[1], display: false };
  m = /^\\\[([\s\S]*)\\\]$/.exec(tex);
  if (m) return { tex: m[1], display: true };
  return { tex, display: tag === "div" };
}

const MATH_RE = /<(span|div)\b[^>]*\bclass="(?:[^"]*\s)?arithmatex(?:\s[^"]*)?"[^>]*>([\s\S]*?)<\/\1>/g;
// Page text where raw LaTeX must not survive: everything but code, scripts, styles and the math itself.
const SKIP_RE = /<(pre|code|script|style|textarea)\b[\s\S]*?<\/\1>/g;
const RAW_RE = /\$\$|\$\\[A-Za-z]|\\begin\{/;
// Resources loaded from another host.
const REMOTE = String.raw`(?:https?:)?//`;
const HTML_REMOTE_RE = new RegExp(
  String.raw`<(?:script|link|img|iframe|source|video|audio|embed|object|image|use)\b[^>]*?\b(?:src|href|srcset|data|xlink:href)\s*=\s*["']?(` + REMOTE + String.raw`[^"'\s>]+)`,
  "gi",
);
const CSS_REMOTE_RE = new RegExp(String.raw`(?:url\(\s*["']?|@import\s+["'])(` + REMOTE + String.raw`[^"')\s]+)`, "gi");

function lineOf(text, index) {
  return text.slice(0, index).split("\n").length;
}

const site = resolve(process.argv[2] || "site");
let files = 0, formulas = 0;
const errors = [];
try {
  statSync(site);
} catch {
  console.error(`check_math: ${site} does not exist: build the site first (mkdocs build --strict).`);
  process.exit(2);
}
for (const file of filesEnding(site, ".css")) {
  for (const m of readFileSync(file, "utf8").matchAll(CSS_REMOTE_RE))
    errors.push(`${relative(process.cwd(), file)}: loads from another host: ${m[1]}`);
}
for (const file of filesEnding(site, ".html")) {
  const html = readFileSync(file, "utf8");
  const where = relative(process.cwd(), file);
  let found = 0;
  for (const m of html.matchAll(MATH_RE)) {
    found++;
    const { tex, display } = extract(m[2], m[1]);
    try {
      katex.renderToString(tex, { ...OPTIONS, displayMode: display });
    } catch (err) {
      const msg = String(err && err.message ? err.message : err).split("\n")[0];
      errors.push(`${where}:${lineOf(html, m.index)}: ${msg}\n    ${display ? "\\[" : "\\("}${tex.trim()}${display ? "\\]" : "\\)"}`);
    }
  }
  const text = html.replace(MATH_RE, " ").replace(SKIP_RE, " ").replace(/<[^>]+>/g, " ");
  const body = unescapeHtml(text);
  for (const line of body.split("\n")) {
    if (RAW_RE.test(line)) errors.push(`${where}: LaTeX left unprocessed in the page text: ${line.trim().slice(0, 160)}`);
  }
  for (const m of html.matchAll(HTML_REMOTE_RE))
    errors.push(`${where}:${lineOf(html, m.index)}: loads from another host: ${m[1]}`);
  if (found) files++;
  formulas += found;
}

if (formulas === 0) errors.push(`no arithmatex element found under ${site}: is pymdownx.arithmatex (generic: true) enabled?`);
for (const e of errors) console.error(e);
console.log(
  `check_math: KaTeX ${katex.version}, strict: ${formulas} formulas in ${files} pages; ` +
    `remote resources checked; ${errors.length} error(s)`,
);
process.exit(errors.length ? 1 : 0);
