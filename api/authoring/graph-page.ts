import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import express, { type Router } from 'express';
import { checkoutPath } from '../../common/paths.ts';

/** The page's own files (HTML, script, style): static, public, holding no data. */
const PAGE_DIR = checkoutPath('api/authoring/graph-page');
/** Mermaid's browser build from the installed package, so the page needs no CDN. */
const MERMAID_BROWSER_BUILD = join(dirname(createRequire(import.meta.url).resolve('mermaid/package.json')), 'dist', 'mermaid.min.js');

/**
 * `/graph/`: a small page that draws a definition's or a run's flowchart (the graph endpoints'
 * Mermaid) in the browser. The page is public like /docs; the graphs behind it need a key, which
 * the page sends as a bearer token from the tab's session storage. Same-origin scripts only, so
 * helmet's default CSP holds.
 */
export function graphPage(): Router {
  const router = express.Router();
  router.get('/mermaid.min.js', (_req, res) => {
    res.type('text/javascript').set('Cache-Control', 'public, max-age=86400').sendFile(MERMAID_BROWSER_BUILD);
  });
  router.use(express.static(PAGE_DIR, { index: 'index.html', fallthrough: true }));
  return router;
}
