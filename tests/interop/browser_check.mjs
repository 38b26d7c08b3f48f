// A real browser on the demo page: Debian's headless Chromium driven by playwright-core.
//
//   node browser_check.mjs <base-url> <message> <user-data-dir> <screenshot-dir>
//
// Opens <base-url>/, sends <message> through the chat form, waits for the assistant's reply,
// reads document.cookie (the session cookie is httpOnly, so it must not be there), reloads and
// reads the session id and the rendered history again. After the turn and after the reload it
// reads what the page draws (the persona's bars, the pain-point chips, the chat bubbles: their
// text, ARIA values and rendered sizes) and saves a screenshot in <screenshot-dir>
// (after-chat.png, after-reload.png; failure.png when a step fails); at the end it asks
// GET /api/session for the persona the bars must show. Prints one JSON object on stdout; the
// Python test (tests/test_browser.py) asserts on it. Never downloads a browser: the executable
// is /usr/bin/chromium (or $CHROMIUM), installed by `./dev test` from Debian's `chromium`.
import { chromium } from "playwright-core";

const [baseUrl, message, userDataDir, screenshotDir] = process.argv.slice(2);
if (!baseUrl || !message || !userDataDir || !screenshotDir) {
  console.error("usage: node browser_check.mjs <base-url> <message> <user-data-dir> <screenshot-dir>");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = 20_000;

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server", // loopback only, whatever proxy the environment names
  ],
  timeout: 60_000,
});

// What the page draws, read from the DOM: every bar (its item's data-name is the API's name),
// every chip, every bubble, with the sizes the layout gave them.
const readPicture = () => {
  const box = (node) => {
    const r = node.getBoundingClientRect();
    return { left: r.left, right: r.right, width: r.width, height: r.height };
  };
  const bars = [...document.querySelectorAll("[data-name] > [role=meter]")].map((meter) => {
    const item = meter.parentElement;
    return {
      list: item.parentElement.id,
      name: item.dataset.name,
      text: item.textContent,
      label: meter.getAttribute("aria-label"),
      valueNow: Number(meter.getAttribute("aria-valuenow")),
      valueMax: Number(meter.getAttribute("aria-valuemax")),
      valueText: meter.getAttribute("aria-valuetext"),
      track: box(meter),
      fill: box(meter.firstElementChild),
    };
  });
  const chips = [...document.querySelectorAll("#pain-points > li")].map((li) => ({
    name: li.dataset.name, text: li.textContent, box: box(li),
  }));
  const bubbles = [...document.querySelectorAll("#log li")].map((li) => ({
    role: li.className, text: li.textContent, box: box(li),
    background: getComputedStyle(li).backgroundColor,
  }));
  return { bars, chips, bubbles };
};

const result = { consoleErrors: [], pageErrors: [], failedRequests: [], badResponses: [] };
let page;
try {
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (msg) => {
    if (msg.type() === "error") result.consoleErrors.push({ text: msg.text(), url: msg.location().url });
  });
  page.on("pageerror", (err) => result.pageErrors.push(String(err)));
  page.on("requestfailed", (req) => result.failedRequests.push(`${req.method()} ${req.url()}`));
  page.on("response", (res) => {
    if (res.status() >= 400) result.badResponses.push({ url: res.url(), status: res.status() });
  });

  const sessionShown = () =>
    page.waitForFunction(() => {
      const text = document.getElementById("session-id")?.textContent ?? "";
      return /^[0-9a-f-]{36}$/.test(text.trim());
    });

  const first = await page.goto(`${baseUrl}/`, { waitUntil: "load" });
  result.pageStatus = first.status();
  await sessionShown();
  result.sessionIdOnLoad = (await page.textContent("#session-id")).trim();

  await page.fill("#message", message);
  await page.click("#send");
  await page.waitForSelector("#log li.assistant");
  result.reply = (await page.textContent("#log li.assistant")).trim();
  result.sessionIdAfterChat = (await page.textContent("#session-id")).trim();
  result.messageCountAfterChat = (await page.textContent("#message-count")).trim();
  await page.waitForFunction(() => document.querySelectorAll("#vectors [role=meter]").length > 0);
  result.pictureAfterChat = await page.evaluate(readPicture);
  await page.screenshot({ path: `${screenshotDir}/after-chat.png`, fullPage: true });
  result.documentCookie = await page.evaluate(() => document.cookie);
  result.cookies = (await context.cookies(baseUrl)).map(({ name, httpOnly, sameSite, path, secure, expires }) => ({
    name, httpOnly, sameSite, path, secure, expires,
  }));

  await page.reload({ waitUntil: "load" });
  await sessionShown();
  await page.waitForFunction(() => document.querySelectorAll("#log li").length >= 2);
  result.sessionIdAfterReload = (await page.textContent("#session-id")).trim();
  result.logAfterReload = await page.$$eval("#log li", (items) =>
    items.map((li) => ({ role: li.className, text: li.textContent })),
  );
  await page.waitForFunction(() => document.querySelectorAll("#vectors [role=meter]").length > 0);
  result.pictureAfterReload = await page.evaluate(readPicture);
  await page.screenshot({ path: `${screenshotDir}/after-reload.png`, fullPage: true });
  result.documentCookieAfterReload = await page.evaluate(() => document.cookie);
  result.persona = await page.evaluate(async () => (await (await fetch("/api/session")).json()).persona);
  result.ok = true;
} catch (error) {
  result.ok = false;
  result.error = String(error && error.stack ? error.stack : error);
  await page?.screenshot({ path: `${screenshotDir}/failure.png`, fullPage: true }).catch(() => {});
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(result));
