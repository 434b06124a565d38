/**
 * Headless Chromium for the tests that run sigil in a page (tests/platforms/platforms_test.ts,
 * tests/aot/aot_platforms_test.ts, tests/aot/aot_browser_webgpu_test.ts): where the browser
 * is, and one bounded run of it that resolves with the report its page posts.
 */

/** The Chromium binary: `$CHROMIUM`, else `chromium` or `chromium-browser` on PATH. */
export function chromiumPath(): string | undefined {
  const env = Deno.env.get("CHROMIUM");
  if (env) return env;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    for (const name of ["chromium", "chromium-browser"]) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/** The Chromium binary; throws where there is none. */
export function findChromium(): string {
  const path = chromiumPath();
  if (!path) {
    throw new Error("no chromium on PATH: install Debian's chromium package (.ci/run does)");
  }
  return path;
}

/**
 * Opens `url` in a fresh headless Chromium (its own profile under `profile`, and `flags` after
 * the usual ones) and resolves with `report` once the page posts it; the browser is killed
 * then, or after `limitMs` with its stderr in the error.
 */
export async function chromiumReport(
  url: string,
  report: Promise<Record<string, unknown>>,
  profile: string,
  { flags = ["--disable-gpu"], limitMs = 240_000 }: {
    flags?: readonly string[];
    limitMs?: number;
  } = {},
): Promise<Record<string, unknown>> {
  const child = new Deno.Command(findChromium(), {
    args: [
      "--headless",
      "--no-sandbox",
      "--no-first-run",
      "--disable-extensions",
      ...flags,
      `--user-data-dir=${profile}`,
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no report from ${url} in time`)), limitMs);
  });
  try {
    return await Promise.race([report, timeout]);
  } catch (e) {
    child.kill("SIGKILL");
    const { stderr } = await output;
    throw new Error(`${(e as Error).message}\n${new TextDecoder().decode(stderr).slice(-4000)}`);
  } finally {
    clearTimeout(timer);
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await output;
  }
}
