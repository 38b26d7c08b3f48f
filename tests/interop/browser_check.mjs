// A real browser on the demo page: Debian's headless Chromium driven by playwright-core.
//
//   node browser_check.mjs <base-url> <message> <user-data-dir>
//
// Opens <base-url>/, sends <message> through the chat form, waits for the assistant's reply,
// reads document.cookie (the session cookie is httpOnly, so it must not be there), reloads and
// reads the session id and the rendered history again. Prints one JSON object on stdout; the
// Python test (tests/test_browser.py) asserts on it. Never downloads a browser: the executable
// is /usr/bin/chromium (or $CHROMIUM), installed by `./dev test` from Debian's `chromium`.
import { chromium } from "playwright-core";

const [baseUrl, message, userDataDir] = process.argv.slice(2);
if (!baseUrl || !message || !userDataDir) {
  console.error("usage: node browser_check.mjs <base-url> <message> <user-data-dir>");
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

const result = { consoleErrors: [], pageErrors: [], failedRequests: [], badResponses: [] };
try {
  const page = context.pages()[0] ?? (await context.newPage());
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
  result.documentCookieAfterReload = await page.evaluate(() => document.cookie);
  result.ok = true;
} catch (error) {
  result.ok = false;
  result.error = String(error && error.stack ? error.stack : error);
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(result));
