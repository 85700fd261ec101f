/**
 * The status page in a real browser: headless Chromium (Debian's `chromium`,
 * driven by playwright-core) against a real gateway with its admin API, one
 * tenant whose outbound bind points at a port nothing listens on, and one
 * whose policy burns CPU past a 5 ms/s budget while an ESME submits. Logs in
 * through the form, reads what the page shows, watches it refresh, and saves
 * the screenshots (docs/screenshots/ with SLUICE_SCREENSHOTS=1). Skipped, saying so, without chromium.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/log/logger';
import { startSluice, type Sluice } from '../../src/runtime';
import { EsmeClient } from '../../src/tools/esme-client';
import { freePort, sandboxedSetup, sleep } from '../helpers/harness';

const CHROMIUM = '/usr/bin/chromium';
// The screenshots kept in docs/ are written when asked (SLUICE_SCREENSHOTS=1 npm test); otherwise to a
// temporary directory, so a test run leaves the working tree as it was.
const SHOTS = process.env.SLUICE_SCREENSHOTS === '1' ? path.resolve(__dirname, '../../../docs/screenshots') : mkdtempSync(path.join(os.tmpdir(), 'sluice-shots-'));
const TOKEN = 'status-page-token-0123456789';

/** Why the browser test cannot run here, or undefined when it can. */
function skipReason(): string | undefined {
  if (!existsSync(CHROMIUM)) return `chromium not installed (${CHROMIUM}; apt-get install chromium)`;
  try {
    require.resolve('playwright-core');
  } catch {
    return 'playwright-core not installed';
  }
  return undefined;
}
const SKIP = skipReason();

/** Poll `cond` from here (a string or function evaluated in the page would be refused by its CSP) for up to 15 s. */
async function poll(cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 75; i++) {
    if (await cond()) return;
    await sleep(200);
  }
  assert.fail(`not within 15 s: ${what}`);
}
/** An element's background colour, run in the page (typed by hand: the tests are compiled without the DOM's types). */
type Win = { getComputedStyle(e: unknown): { backgroundColor: string } };
const BACKGROUND = (e: unknown): string => (e as { ownerDocument: { defaultView: Win } }).ownerDocument.defaultView.getComputedStyle(e).backgroundColor;

const ACCEPT = "smpp.onBind((b) => b.accept());\nsmpp.onPdu('submit_sm', (pdu) => pdu.reply({ message_id: 'a' }));\n";
/** Spends ~30 ms of CPU per submit: over a 5 ms/s budget at the first. */
const HOG = `smpp.onBind((b) => b.accept());
smpp.onPdu('submit_sm', (pdu) => { const end = Date.now() + 30; let x = 0; while (Date.now() < end) x++; return pdu.reply({ message_id: 'h' + (x > 0 ? '1' : '0') }); });
`;

describe('status page in headless Chromium', { skip: SKIP }, () => {
  let s: Sluice;
  let base: string;
  let hog: EsmeClient;
  let stopLoad = false;
  let load: Promise<void> = Promise.resolve();
  // playwright-core's types, loaded only when the test runs.
  let browser: import('playwright-core').Browser;

  before(async () => {
    const { dir, config } = sandboxedSetup(
      { acme: ACCEPT, hog: HOG },
      {
        admin: { listen: '127.0.0.1:0', token: TOKEN },
        tenants: [
          { id: 'acme', policy: 'acme.ts', system_ids: ['acme-app'], binds: [{ name: 'upstream-1', host: '127.0.0.1', port: await freePort(), system_id: 'acme', password: 'bindpw' }] },
          { id: 'hog', policy: 'hog.ts', system_ids: ['hog-app'], limits: { cpu_ms_per_s: 5, handler_timeout_ms: 500, handler_deadline_ms: 3000 } },
        ],
      },
    );
    s = await startSluice({ config, logger: silentLogger, cwd: dir, watch: false, admin: true, reconnectBaseMs: 300 });
    base = `http://127.0.0.1:${s.adminPort}`;
    hog = await EsmeClient.connect({ port: s.port });
    assert.equal((await hog.bind('hog-app', 'pw')).command_status, 0);
    // Steady load on the hog, bounded: it stops when the test ends or after 3000 submits.
    load = (async () => {
      for (let i = 0; i < 3000 && !stopLoad; i++) {
        await hog.session.request('submit_sm', { source_addr: '1', destination_addr: '2', short_message: Buffer.from('x') }).catch(() => undefined);
        await sleep(25);
      }
    })();
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update'] });
    mkdirSync(SHOTS, { recursive: true });
  });
  after(async () => {
    stopLoad = true;
    await load;
    await browser?.close();
    await hog?.session.unbindAndClose('test over').catch(() => undefined);
    await s?.stop();
  });

  it('logs in through the form, shows the down bind and the throttled tenant first, refreshes in place; a wrong token is refused; the cookie is HttpOnly', { timeout: 90_000 }, async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') cspErrors.push(m.text());
    });

    // The login form, and a wrong token: a 401 page, no cookie.
    const first = await page.goto(`${base}/`);
    assert.equal(first?.status(), 200);
    await page.locator('input[name=token]').waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'status-login.png') });
    await page.fill('input[name=token]', 'not-the-token');
    const [wrong] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.equal(wrong?.status(), 401);
    assert.match(await page.locator('.err').innerText(), /not the admin token/);
    assert.deepEqual(await context.cookies(), []);

    // The right token: redirected to the page, with the cookie.
    await page.fill('input[name=token]', TOKEN);
    await Promise.all([page.waitForURL(`${base}/`), page.click('button[type=submit]')]);
    await page.locator('h1', { hasText: 'Sluice status' }).waitFor();
    assert.ok(!page.url().includes(TOKEN), 'the token is never in the URL');
    const cookies = await context.cookies();
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0]!.name, 'sluice_session');
    assert.equal(cookies[0]!.httpOnly, true);
    assert.equal(cookies[0]!.sameSite, 'Strict');
    assert.equal(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie), '', 'the page script cannot read it');

    // Problems first, in colour: the bind that cannot connect with its error, the throttled tenant.
    const bindProblem = page.locator('#problems li.error', { hasText: 'acme: bind upstream-1 down' });
    await bindProblem.waitFor({ timeout: 20_000 });
    assert.match(await bindProblem.innerText(), /ECONNREFUSED/);
    const throttled = page.locator('#problems li', { hasText: 'hog: throttled by its CPU budget' });
    await throttled.waitFor({ timeout: 20_000 });
    assert.match(await throttled.innerText(), /over 5 ms of CPU per second/);
    assert.equal(await bindProblem.evaluate(BACKGROUND), 'rgb(253, 232, 232)', 'errors are red');
    assert.equal(await throttled.evaluate(BACKGROUND), 'rgb(253, 246, 227)', 'warnings are amber');
    const [problemsY, tenantsY] = await Promise.all([page.locator('#problems').boundingBox(), page.locator('#tenants').boundingBox()]);
    assert.ok(problemsY!.y < tenantsY!.y, 'problems come before the tenants');

    // Per tenant: the bind with its state and error, CPU against the budget, refused counts.
    const acmeBind = page.locator('section[data-tenant=acme] tr[data-bind=upstream-1]');
    assert.match(await acmeBind.innerText(), /backoff|connecting/);
    assert.match(await acmeBind.innerText(), /ECONNREFUSED/);
    const hogBox = page.locator('section[data-tenant=hog]');
    assert.match(await hogBox.innerText(), /of 5 ms\/s/);

    // It refreshes in place: the data's time and the hog's submits move, the document is the same one.
    await page.evaluate(() => ((globalThis as { marker?: number }).marker = 42));
    const at0 = await page.locator('#at').innerText();
    const submits = async (): Promise<number> => Number(/\((\d+) in all\)/.exec(await hogBox.innerText())?.[1] ?? -1);
    const submits0 = await submits();
    await poll(async () => (await page.locator('#at').innerText()) !== at0, 'the data\'s time moved');
    await poll(async () => /\d+\.\d \/s/.test(await hogBox.innerText()), 'a rate computed between two refreshes');
    assert.ok((await submits()) > submits0, 'the submit count moved without a reload');
    assert.equal(await page.evaluate(() => (globalThis as { marker?: number }).marker), 42, 'not reloaded');
    assert.match(await hogBox.innerText(), /ESME_RTHROTTLED: \d+/, 'errors by status');
    await page.screenshot({ path: path.join(SHOTS, 'status-overview.png'), fullPage: true });

    // Without the cookie the data is 401, in a browser as from anywhere.
    const other = await browser.newContext();
    const anon = await other.newPage();
    assert.equal((await anon.goto(`${base}/status.json`))?.status(), 401);
    assert.equal((await fetch(`${base}/status.json`)).status, 401);
    await other.close();

    // Log out: the cookie is gone and the data refused.
    await Promise.all([page.waitForURL(`${base}/`), page.click('header button[type=submit]')]);
    await page.locator('input[name=token]').waitFor();
    assert.deepEqual(await context.cookies(), []);
    assert.deepEqual(cspErrors.filter((e) => /Content Security Policy/i.test(e)), [], 'nothing the CSP had to block');
    await context.close();
  });
});
