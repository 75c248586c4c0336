// Lighthouse on several pages in one Chrome (starting Chrome once per page costs seconds on a small machine).
//
//   node tools/lighthouse/run.mjs plan.json
//   node tools/lighthouse/run.mjs --user-agent desktop|mobile
//
// The second form prints the user agent Lighthouse presents with that preset: the console's logins are bound to
// the browser's user agent (Flask-Login's strong session protection), so the session whose cookie Lighthouse
// sends must be made with the same one.
//
// plan.json: {"pages": [{"name": "...", "url": "...", "headers": {"Cookie": "..."}}], "preset": "desktop"|"mobile",
//             "out": "<directory for each page's full report>", "chromeFlags": ["--headless=new", ...]}
// Prints one JSON object: {"lighthouse": version, "pages": [{"name", "url", "finalUrl", "scores": {category: 0..1},
//   "metrics": {...}, "losses": [...], "notes": [...]}]},
// where losses are the audits that cost each category points (score below 1 and a weight in the category), and
// notes the performance findings that cost none (weight 0) but name savings.
// Chrome comes from $CHROME_PATH (Debian's /usr/bin/chromium in the tests); nothing is downloaded.
import fs from 'node:fs/promises';
import path from 'node:path';

import * as chromeLauncher from 'chrome-launcher';
import lighthouse from 'lighthouse';
import * as constants from 'lighthouse/core/config/constants.js';
import desktopConfig from 'lighthouse/core/config/desktop-config.js';

const CATEGORIES = ['performance', 'accessibility', 'best-practices'];
const METRICS = ['first-contentful-paint', 'largest-contentful-paint', 'total-blocking-time', 'cumulative-layout-shift'];

function losses(lhr) {
  const found = [];
  for (const id of CATEGORIES) {
    const category = lhr.categories[id];
    for (const ref of category.auditRefs) {
      const audit = lhr.audits[ref.id];
      if (ref.weight > 0 && audit.score !== null && audit.score < 1) {
        const items = (audit.details && audit.details.items) || [];
        found.push({
          category: id,
          id: ref.id,
          title: audit.title,
          score: audit.score,
          weight: ref.weight,
          value: audit.displayValue || '',
          // What the audit names (console messages, elements, resources), shortened for the table.
          items: items.slice(0, 5).map((item) => {
            const node = item.node || {};
            return String(item.description || item.source?.url || item.url || node.snippet || node.selector
              || JSON.stringify(item)).slice(0, 300);
          }),
        });
      }
    }
  }
  return found;
}

// Findings that cost no points (weight 0) but say what would make a page lighter or faster, e.g. compression.
function notes(lhr) {
  const found = [];
  for (const ref of lhr.categories.performance.auditRefs) {
    const audit = lhr.audits[ref.id];
    const failing = audit.score !== null && audit.score < 1;
    if (ref.weight === 0 && failing && ['metricSavings', 'binary'].includes(audit.scoreDisplayMode)) {
      found.push({id: ref.id, title: audit.title, value: audit.displayValue || ''});
    }
  }
  return found;
}

async function main() {
  if (process.argv[2] === '--user-agent') {
    process.stdout.write(constants.userAgents[process.argv[3]]);
    return;
  }
  const plan = JSON.parse(await fs.readFile(process.argv[2], 'utf8'));
  await fs.mkdir(plan.out, {recursive: true});
  const chrome = await chromeLauncher.launch({
    chromePath: process.env.CHROME_PATH,
    chromeFlags: plan.chromeFlags,
    logLevel: 'error',
  });
  const results = [];
  let version = null;
  try {
    for (const page of plan.pages) {
      const flags = {
        port: chrome.port,
        output: 'json',
        logLevel: 'error',
        onlyCategories: CATEGORIES,
        extraHeaders: page.headers || {},
        // The full-page screenshot is a second capture per page and feeds no score.
        disableFullPageScreenshot: true,
        // Cookies too: a page seen logged out (the login form) leaves a session cookie in this Chrome, which
        // would otherwise go with the next page's requests beside the Cookie header and win over it.
        clearStorageTypes: [...constants.defaultSettings.clearStorageTypes, 'cookies'],
      };
      const config = plan.preset === 'desktop' ? desktopConfig : undefined;
      const runner = await lighthouse(page.url, flags, config);
      const lhr = runner.lhr;
      version = lhr.lighthouseVersion;
      await fs.writeFile(path.join(plan.out, `${page.name}.json`), runner.report);
      const scores = {};
      for (const id of CATEGORIES) scores[id] = lhr.categories[id].score;
      results.push({
        name: page.name,
        url: page.url,
        finalUrl: lhr.finalDisplayedUrl,
        runtimeError: lhr.runtimeError ? lhr.runtimeError.message : null,
        warnings: lhr.runWarnings,
        scores,
        metrics: Object.fromEntries(METRICS.map((id) => [id, lhr.audits[id]?.numericValue ?? null])),
        losses: losses(lhr),
        notes: notes(lhr),
      });
    }
  } finally {
    await chrome.kill();
  }
  process.stdout.write(JSON.stringify({lighthouse: version, pages: results}));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
