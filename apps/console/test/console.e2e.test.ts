/**
 * The web console in a real browser (Debian's chromium via playwright-core), against the real API,
 * Redis and a worker process, with auth on: sign in, load /ui, submit a job from the page and watch
 * its curve grow while it trains, move a label with its confirmation, draw a digit and get a
 * prediction with its class name, see an evaluation and a tune, open /docs and Bull Board (which asks
 * no other host for anything), sign out. Then with auth off: no sign-out offered. Screenshots go to
 * docs/console/*.png (the README shows one).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page, Request } from 'playwright-core';
import { http, repoRoot, startStack, type JobBody, type Stack } from '../../../test/support/stack.ts';
import { launchBrowser, type Browser } from './browser.ts';

/**
 * Opens Bull Board and waits until it lists the queues and the network is quiet; returns the requests
 * the page made to any host but the API's (`offHost`: none may leave the machine) and whether it made
 * any to the API's at all.
 */
async function boardRequests(page: Page, apiUrl: string) {
  const { origin } = new URL(apiUrl);
  const urls: string[] = [];
  const onRequest = (r: Request) => void urls.push(r.url());
  page.on('request', onRequest);
  try {
    const board = await page.goto(`${apiUrl}/admin/queues`);
    expect(board?.status()).toBe(200);
    // The queues' names are in the page once its scripts ran and asked the board's API.
    await page.waitForSelector('text=batch-predict', { timeout: 30_000 });
    await page.waitForLoadState('networkidle');
  } finally {
    page.off('request', onRequest);
  }
  const network = urls.filter((u) => !/^(data|blob):/.test(u));
  return {
    offHost: network.filter((u) => new URL(u).origin !== origin),
    sameHost: network.some((u) => new URL(u).pathname.startsWith('/admin/queues/api/')),
  };
}

const KEY = 'console-test-key-0123456789';
const auth = { authorization: `Bearer ${KEY}` };
const shots = path.join(repoRoot, 'docs/console');

describe('the web console in chromium', { timeout: 300_000 }, () => {
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  /** Errors the pages logged or threw: Content-Security-Policy refusals (helmet's CSP is on) and others. */
  const pageErrors: string[] = [];
  const shot = (name: string) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    await mkdir(shots, { recursive: true });
    stack = await startStack('console', { apiEnv: { API_KEYS: KEY } });
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => void pageErrors.push(e.message));
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  /** Polls the job (with the key) until it has ended. */
  async function waitForJob(id: string, timeoutMs = 180_000): Promise<JobBody> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const { body } = await http<JobBody>(`${stack.url}/v1/jobs/${id}`, 'GET', undefined, auth);
      if (['completed', 'failed', 'cancelled'].includes(body.state)) return body;
      if (Date.now() > until)
        throw new Error(`job ${id} still ${body.state}:\n${stack.workers[0]?.output()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Trains through the API (Bearer key) and waits: a second model version, a base for evaluations. */
  async function train(body: object): Promise<JobBody> {
    const r = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', body, auth);
    expect(r.status).toBe(202);
    const j = await waitForJob(r.body.id);
    expect(j.state, JSON.stringify(j)).toBe('completed');
    return j;
  }

  it('sends a browser without a session to the login page, and signs in with a key', async () => {
    await page.goto(`${stack.url}/ui/jobs`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.fill('input[name=key]', 'wrong-key');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('.error')).toContain('not accepted');
    await page.fill('input[name=key]', KEY);
    await page.click('button[type=submit]');
    await page.waitForURL(`${stack.url}/ui/jobs`);
    const cookie = (await browser.context.cookies()).find((c) => c.name === 'mlq_session')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(cookie.value).not.toContain(KEY);
    await page.waitForSelector('text=No jobs.');
    // Signed in with a key, so the page offers to sign out.
    expect(await page.isVisible('[data-testid=sign-out] button')).toBe(true);
    expect(await page.textContent('[data-testid=sign-out]')).toBe('Sign out');
    // Time to first paint of /ui, in a fresh tab (the assets are cached from the load above).
    const tab = await browser.context.newPage();
    await tab.goto(`${stack.url}/ui/jobs`);
    await tab.waitForSelector('h1');
    const paints = await tab.evaluate(() =>
      Object.fromEntries(performance.getEntriesByType('paint').map((e) => [e.name, Math.round(e.startTime)])),
    );
    console.log(`/ui paint times (ms since navigation): ${JSON.stringify(paints)}`);
    expect(paints['first-contentful-paint']).toBeGreaterThan(0);
    await tab.close();
  });

  it('submits a job from the page and its curve gains points while it trains', async () => {
    // Version 1 of "digits", trained through the API on two digits (its evaluation draws a ROC curve).
    await train({
      model: 'digits',
      architecture: 'mlp',
      dataset: { format: 'mnist', digits: [0, 1], limit: 400 },
      epochs: 2,
      validationSplit: 0.2,
    });
    await page.goto(`${stack.url}/ui/jobs`);
    await page.click('[data-testid=new-job]');
    const payload = {
      model: 'digits',
      architecture: 'mnist-cnn',
      dataset: { format: 'mnist', digits: [0, 1, 2], limit: 1500 },
      epochs: 4,
      batchSize: 32,
      validationSplit: 0.2,
    };
    await page.fill('[data-testid=submit-payload]', JSON.stringify(payload));
    await page.click('[data-testid=submit-job]');
    await page.waitForURL(/\/ui\/jobs\/[0-9a-f-]{36}$/);
    const jobId = page.url().slice(page.url().lastIndexOf('/') + 1);

    const points = async () => Number(await page.getAttribute('[data-testid=loss-chart]', 'data-points'));
    const state = () => page.textContent('h1 .badge');
    await page.waitForSelector('[data-testid=loss-chart]', { timeout: 90_000 });
    const seen: number[] = [];
    while ((await state()) === 'active' && seen.length < 200) {
      seen.push(await points());
      await page.waitForTimeout(500);
    }
    console.log(`loss-chart points while active: ${seen.join(' ')}`);
    const whileActive = [...new Set(seen)];
    expect(whileActive.length, `points seen while active: ${seen.join(',')}`).toBeGreaterThanOrEqual(3);
    await expect.poll(state, { timeout: 60_000 }).toBe('completed');
    await page.waitForSelector('[data-testid=model-link]');
    expect(await page.textContent('[data-testid=model-link]')).toBe('digits@2');
    expect(await points()).toBeGreaterThan(Math.max(...seen) - 1);
    await shot('job');

    // The history outlives the job: it is on the version (and in runs/<jobId>/history.json).
    const h = await http<{ epochs: unknown[]; points: unknown[] }>(
      `${stack.url}/v1/models/digits/versions/2/history`,
      'GET',
      undefined,
      auth,
    );
    expect(h.body.epochs).toHaveLength(4);
    expect(h.body.points.length).toBeGreaterThan(0);
    const list = await http<{ jobs: { id: string }[] }>(`${stack.url}/v1/jobs`, 'GET', undefined, auth);
    expect(list.body.jobs.map((j) => j.id)).toContain(jobId);
  });

  it('lists jobs with live state, and filters them by type and state', async () => {
    await page.goto(`${stack.url}/ui/jobs`);
    await page.waitForSelector('[data-testid=jobs-table]');
    expect(await page.locator('[data-testid=jobs-table] tbody tr').count()).toBe(2);
    await page.selectOption('[data-testid=filter-type]', 'evaluate');
    await page.waitForSelector('text=No jobs.');
    expect(new URL(page.url()).search).toBe('?type=evaluate');
    // A job submitted elsewhere appears through the events stream, without a reload.
    const ev = await http<JobBody>(
      `${stack.url}/v1/jobs/evaluate`,
      'POST',
      { model: 'digits@1', dataset: { format: 'mnist', digits: [0, 1], split: 'test', limit: 300 } },
      auth,
    );
    await page.waitForSelector(`tr[data-job="${ev.body.id}"] .badge.completed`, { timeout: 60_000 });
    await page.goto(`${stack.url}/ui/jobs/${ev.body.id}`);
    await page.waitForSelector('[data-testid=confusion]');
    await page.waitForSelector('[data-testid=roc-chart] canvas');
    await shot('evaluate');
    await page.goto(`${stack.url}/ui/jobs`);
    await page.waitForSelector('[data-testid=jobs-table]');
    await shot('jobs');
  });

  it('moves a label after a confirmation', async () => {
    await http(`${stack.url}/v1/models/digits/labels/production`, 'PUT', { version: 1 }, auth);
    await page.goto(`${stack.url}/ui/models/digits`);
    await page.waitForSelector('[data-testid=versions-table]');
    await page.fill('[data-testid=label-name]', 'production');
    await page.selectOption('[data-testid=label-version]', '2');
    await page.click('[data-testid=label-move]');
    await page.waitForSelector('[data-testid=label-confirm][open]');
    expect(await page.textContent('[data-testid=label-confirm]')).toContain('now version 1');
    await shot('model-label');
    await page.click('[data-testid=label-confirm-yes]');
    await page.waitForSelector('tr[data-version="2"] .chip[data-label=production]');
    const m = await http<{ labels: Record<string, number> }>(
      `${stack.url}/v1/models/digits`,
      'GET',
      undefined,
      auth,
    );
    expect(m.body.labels.production).toBe(2);
    await shot('model');
  });

  it('draws a digit on the canvas and shows the prediction with its class name', async () => {
    // Pasted into the address bar: the API answers every /ui path with the app.
    await page.goto(`${stack.url}/ui/models/digits/versions/2`);
    const canvas = await page.waitForSelector('[data-testid=digit-canvas]');
    const box = (await canvas.boundingBox())!;
    // A "1": one stroke down the middle, slightly slanted.
    await page.mouse.move(box.x + box.width * 0.55, box.y + box.height * 0.15);
    await page.mouse.down();
    for (let i = 1; i <= 12; i++)
      await page.mouse.move(box.x + box.width * (0.55 - i * 0.008), box.y + box.height * (0.15 + i * 0.058));
    await page.mouse.up();
    await page.waitForSelector('[data-testid=prediction-class]');
    const predicted = await page.textContent('[data-testid=prediction-class]');
    console.log(`drawn "1" predicted as ${predicted}`);
    expect(['0', '1', '2']).toContain(predicted);
    expect(await page.locator('[data-testid=score]').count()).toBe(3);
    expect(Number(await page.getAttribute('[data-testid=loss-chart]', 'data-points'))).toBeGreaterThan(4);
    await shot('version');
  });

  it('shows a tune: its trials sortable by the objective, their curves overlaid', async () => {
    const t = await http<JobBody>(
      `${stack.url}/v1/jobs/tune`,
      'POST',
      {
        model: 'digits-tuned',
        architecture: 'mlp',
        dataset: { format: 'mnist', digits: [0, 1, 2], limit: 400 },
        epochs: 2,
        search: { space: { learningRate: [0.001, 0.01] } },
      },
      auth,
    );
    await waitForJob(t.body.id);
    await page.goto(`${stack.url}/ui/jobs/${t.body.id}`);
    await page.waitForSelector('[data-testid=tune-chart] canvas');
    await page.waitForSelector('[data-testid=trials] tr.best');
    expect(await page.locator('[data-testid=trials] tbody tr').count()).toBe(2);
    // The objective column (valAcc): highest first, then lowest first after a click on its header.
    const scores = async () =>
      (await page.locator('[data-testid=trials] tbody tr td:nth-child(4)').allTextContents()).map(Number);
    const desc = await scores();
    expect(desc).toEqual([...desc].sort((a, b) => b - a));
    expect(await page.locator('[data-testid=trials] tbody tr').first().getAttribute('class')).toBe('best');
    await page.click('[data-testid=sort-objective]');
    await expect.poll(() => page.textContent('[data-testid=sort-objective]')).toContain('▲');
    const asc = await scores();
    expect(asc).toEqual([...desc].sort((a, b) => a - b));
    await shot('tune');
  });

  it('serves /docs, Bull Board and the workers page with the session', async () => {
    await page.goto(`${stack.url}/docs`);
    await page.waitForSelector('.swagger-ui .info .title', { timeout: 30_000 });
    expect(await page.textContent('.swagger-ui .info .title')).toContain('mlq');
    await shot('docs');
    expect(await boardRequests(page, stack.url)).toEqual({ offHost: [], sameHost: true });
    await page.goto(`${stack.url}/ui/workers`);
    await page.waitForSelector('[data-testid=workers-table] tbody tr');
    expect(await page.textContent('[data-testid=workers-table]')).toMatch(/ago/);
  });

  it('signs out: the session ends, and the console asks for a key again', async () => {
    await page.goto(`${stack.url}/ui/models`);
    await page.click('[data-testid=sign-out] button');
    await page.waitForURL(`${stack.url}/login`);
    expect((await browser.context.cookies()).some((c) => c.name === 'mlq_session')).toBe(false);
    await page.goto(`${stack.url}/ui/jobs`);
    expect(new URL(page.url()).pathname).toBe('/login');
  });

  it('ran every page without a script error or a Content-Security-Policy refusal', () => {
    // The login page's wrong key answers 401 on purpose. Nothing else may fail.
    const ours = pageErrors.filter((e) => !/status of 401/.test(e));
    expect(ours).toEqual([]);
  });
});

describe('the web console in chromium, with auth off', { timeout: 120_000 }, () => {
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    stack = await startStack('console-open', { workers: 0 });
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => void pageErrors.push(e.message));
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('offers no sign-out: there is no session to end', async () => {
    await page.goto(`${stack.url}/ui/jobs`);
    expect(new URL(page.url()).pathname).toBe('/ui/jobs');
    await page.waitForSelector('text=No jobs.');
    expect(await page.textContent('header nav')).toContain('Jobs');
    expect(await page.locator('[data-testid=sign-out]').count()).toBe(0);
    expect(await page.locator('text=Sign out').count()).toBe(0);
    // Every way to the page says auth is off, /ui/index.html by its name too.
    for (const p of ['/ui/', '/ui/models/x', '/ui/index.html'])
      expect(await (await fetch(`${stack.url}${p}`)).text()).toContain(
        '<meta name="mlq-auth" content="off">',
      );
  });

  it('serves Bull Board without a request to any other host', async () => {
    expect(await boardRequests(page, stack.url)).toEqual({ offHost: [], sameHost: true });
    // The page itself names no other host (bull-board's own links to its docs and releases aside).
    const html = await (await fetch(`${stack.url}/admin/queues`)).text();
    expect(html).not.toMatch(/fonts\.(googleapis|gstatic)\.com/);
    expect(html).not.toMatch(/\b(src|href)="(https?:)?\/\//);
    expect(pageErrors).toEqual([]);
  });
});
