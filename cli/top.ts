// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `gotatun top [IFACE]`: a live dashboard of WireGuard interfaces, read over
 * the UAPI socket (`get=1`), so it works against any userspace daemon —
 * gotatun, wireguard-go — that serves `/var/run/wireguard/IFACE.sock`.
 * Without IFACE it shows every socket in that directory.
 *
 * Each interface gets a line (abbreviated public key, listening port, peer
 * count) and each peer a row: abbreviated public key, endpoint, handshake age
 * (green under 2 minutes, yellow under 3, red after or never: REKEY_AFTER_TIME
 * is 120 s and REJECT_AFTER_TIME 180 s, whitepaper §6.1), receive and transmit
 * rates from the byte counters' deltas with a 20-cell sparkline of the last
 * 20 samples, totals, and the persistent keepalive. The sparklines of one
 * interface and direction share a scale, which their header shows (the rate
 * of a full cell, `█=…`), so a peer's 100-byte handshake next to another's
 * download draws as the trickle it is. A narrow terminal loses columns of
 * lower priority first; an endpoint is cut only as the last resort, in the
 * middle, so that its port stays.
 *
 * On a terminal it refreshes every second on the alternate screen, with the
 * cursor hidden and stdin in raw mode; `q` or Ctrl-C quits, and the terminal
 * is restored on every way out (SIGINT, SIGTERM, SIGHUP, errors). `--once`
 * prints one plain frame (no escape codes; rates need two samples, so they
 * show `-`) and exits, for scripts; so does any run whose stdout is not a
 * terminal, unless `--watch`, which then prints a plain frame every second.
 * A reader that goes away (`top --watch | head -1`) ends it quietly, exit 0.
 *
 * Reading the sockets is top_read.ts. The rendering ({@link renderFrame},
 * {@link sparkline}, {@link formatRate}, {@link formatAge}) and the rate
 * bookkeeping ({@link TopHistory}) are pure and tested with fixed inputs;
 * {@link topMain} does the I/O.
 */
import { DEFAULT_SOCKET_DIR, SOCKET_DIR_ENV, socketDirFromEnv } from "../uapi/socket_dir.ts";
import type { IpcContext } from "./wg/ipc.ts";
import { defaultResolver } from "./wg/resolve.ts";
import { type InterfaceSnapshot, listInterfaces, type PeerSnapshot, snapshot } from "./top_read.ts";
import {
  abbreviateKey,
  cutEndpoint,
  fit,
  formatAge,
  formatBytes,
  formatRate,
  handshakeColour,
  HISTORY_LENGTH,
  sparkline,
  sparkScale,
} from "./top_format.ts";

export * from "./top_format.ts";
export * from "./top_read.ts";

/** Refresh period in watch mode. */
const REFRESH_MS = 1000;
/** A UAPI request that takes longer than this is shown as an error (--once). */
const UAPI_TIMEOUT_MS = 2000;
/** The same in watch mode, where one stuck daemon must not stall the others' refresh. */
const WATCH_UAPI_TIMEOUT_MS = 800;

const ESC = "\x1b[";
const RESET = `${ESC}0m`;
const BOLD = `${ESC}1m`;
const COLOURS = { green: `${ESC}32m`, yellow: `${ESC}33m`, red: `${ESC}31m` } as const;
/** Alternate screen on, cursor hidden, home. */
const ENTER_SCREEN = `${ESC}?1049h${ESC}?25l${ESC}H`;
/** Cursor shown, alternate screen off. */
const LEAVE_SCREEN = `${ESC}?25h${ESC}?1049l`;

// ---------------------------------------------------------------------------
// Rates over time.

/** A peer ready to draw: the snapshot plus rates and their history. */
export interface PeerView extends PeerSnapshot {
  /** Bytes/s since the previous sample; null on the first one. */
  rxRate: number | null;
  txRate: number | null;
  /** Up to {@link HISTORY_LENGTH} rates, oldest first. */
  rxHistory: readonly number[];
  txHistory: readonly number[];
}

/** An interface ready to draw. */
export interface InterfaceView extends Omit<InterfaceSnapshot, "peers"> {
  peers: PeerView[];
}

interface Track {
  rx: number;
  tx: number;
  at: number;
  rxRate: number | null;
  txRate: number | null;
  rxHistory: number[];
  txHistory: number[];
}

/**
 * TopHistory keeps, per interface and peer, the last counters and the last
 * {@link HISTORY_LENGTH} rates. A counter that goes down means the peer was
 * removed and added again (its counters restart): its history starts over.
 * Peers that disappear are forgotten.
 */
export class TopHistory {
  #tracks = new Map<string, Map<string, Track>>();

  /** update() records `snap`, sampled at `nowMs` (monotonic), and returns its view. */
  update(snap: InterfaceSnapshot, nowMs: number): InterfaceView {
    const old = this.#tracks.get(snap.name) ?? new Map<string, Track>();
    const next = new Map<string, Track>();
    const peers: PeerView[] = [];
    for (const p of snap.peers) {
      let t = old.get(p.publicKey);
      if (t === undefined || p.rxBytes < t.rx || p.txBytes < t.tx) {
        t = {
          rx: p.rxBytes,
          tx: p.txBytes,
          at: nowMs,
          rxRate: null,
          txRate: null,
          rxHistory: [],
          txHistory: [],
        };
      } else if (nowMs > t.at) {
        const dt = (nowMs - t.at) / 1000;
        t.rxRate = (p.rxBytes - t.rx) / dt;
        t.txRate = (p.txBytes - t.tx) / dt;
        push(t.rxHistory, t.rxRate);
        push(t.txHistory, t.txRate);
        t.rx = p.rxBytes;
        t.tx = p.txBytes;
        t.at = nowMs;
      }
      next.set(p.publicKey, t);
      peers.push({
        ...p,
        rxRate: t.rxRate,
        txRate: t.txRate,
        rxHistory: t.rxHistory.slice(),
        txHistory: t.txHistory.slice(),
      });
    }
    this.#tracks.set(snap.name, next);
    return { ...snap, peers };
  }

  /** forgetOthers() drops interfaces not in `names` (their sockets went away). */
  forgetOthers(names: readonly string[]): void {
    for (const name of [...this.#tracks.keys()]) {
      if (!names.includes(name)) this.#tracks.delete(name);
    }
  }
}

function push(history: number[], value: number): void {
  history.push(value);
  if (history.length > HISTORY_LENGTH) history.splice(0, history.length - HISTORY_LENGTH);
}

// ---------------------------------------------------------------------------
// The frame.

/** Options of {@link renderFrame}. */
export interface RenderOptions {
  /** Terminal columns; every line fits. Infinity: no limit (all columns). */
  width: number;
  /** Terminal rows: at most this many lines, the last saying what was left out. */
  height?: number;
  /** ANSI colours (bold headers, coloured handshake ages). */
  colour: boolean;
  /** Current Unix time in seconds, for handshake ages. */
  nowSec: number;
  /** A first line (watch mode shows the time and "q quits"). */
  title?: string;
  /** Where the sockets were looked for, for the "nothing found" line. */
  socketDir?: string;
}

interface Column {
  id: string;
  header: string;
  width: number;
  right: boolean;
  /** The cell's text; longer than `width` is cut with "…" at the end. */
  cell(p: PeerView, nowSec: number, width: number): string;
  colour?: Painter;
}

function handshakeAge(p: PeerSnapshot, nowSec: number): number | null {
  return p.lastHandshake > 0 ? nowSec - p.lastHandshake : null;
}

type Painter = (p: PeerView, nowSec: number) => "green" | "yellow" | "red" | null;

function column(
  group: number,
  [id, header, width, right]: [string, string, number, boolean],
  cell: (p: PeerView, nowSec: number, width: number) => string,
  colour?: Painter,
): { group: number; col: Column } {
  return { group, col: { id, header, width, right, cell, colour } };
}

/**
 * The columns in display order, with the group each belongs to; groups are
 * added by priority while the line still fits (peer first; then handshake,
 * rates, endpoint, sparklines, totals, keepalive).
 */
function columns(peers: readonly PeerView[]): { group: number; col: Column }[] {
  let ep = "ENDPOINT".length;
  for (const p of peers) ep = Math.max(ep, (p.endpoint ?? "(none)").length);
  const age = handshakeAge;
  const rxScale = sparkScale(peers, "rx");
  const txScale = sparkScale(peers, "tx");
  return [
    column(0, ["peer", "PEER", 9, false], (p) => abbreviateKey(p.publicKey)),
    column(
      ENDPOINT_GROUP,
      ["endpoint", "ENDPOINT", Math.min(ep, MAX_ENDPOINT), false],
      (p, _now, width) => cutEndpoint(p.endpoint ?? "(none)", width),
    ),
    column(
      1,
      ["handshake", "HANDSHAKE", 9, true],
      (p, now) => formatAge(age(p, now)),
      (p, now) => handshakeColour(age(p, now)),
    ),
    column(2, ["rx", "RX/s", 10, true], (p) => formatRate(p.rxRate)),
    column(
      4,
      ["rxspark", sparkHeader("RX", rxScale), HISTORY_LENGTH, false],
      (p) => sparkline(p.rxHistory, HISTORY_LENGTH, rxScale),
    ),
    column(2, ["tx", "TX/s", 10, true], (p) => formatRate(p.txRate)),
    column(
      4,
      ["txspark", sparkHeader("TX", txScale), HISTORY_LENGTH, false],
      (p) => sparkline(p.txHistory, HISTORY_LENGTH, txScale),
    ),
    column(5, ["rxtotal", "RX TOTAL", 11, true], (p) => formatBytes(p.rxBytes)),
    column(5, ["txtotal", "TX TOTAL", 11, true], (p) => formatBytes(p.txBytes)),
    column(
      6,
      ["keepalive", "KEEPALIVE", 9, true],
      (p) => p.keepalive > 0 ? `${p.keepalive}s` : "off",
    ),
  ];
}

/** The sparkline header: direction, window, and the rate of a full cell. */
function sparkHeader(direction: "RX" | "TX", scale: number): string {
  return `${direction} 20s █=${formatRate(scale)}`;
}

const INDENT = "  ";
const GAP = "  ";
/** The endpoint column's priority group. */
const ENDPOINT_GROUP = 3;
/** The endpoint column is never wider ("[" + 39-character IPv6 + "]:65535"). */
const MAX_ENDPOINT = 47;
/** Nor, once chosen, narrower: a cut endpoint still says which network it is on, and its port. */
const MIN_ENDPOINT = 15;

/**
 * Picks the columns that fit in `width`, group by group in priority order. The
 * endpoint is cut (down to {@link MIN_ENDPOINT}) only to make room for itself,
 * on a terminal too narrow for it whole; a column of lower priority is shown
 * only when it fits beside the whole endpoint.
 */
function layout(peers: readonly PeerView[], width: number): Column[] {
  const all = columns(peers);
  const lineWidth = (cols: Column[]) =>
    INDENT.length + cols.reduce((n, c) => n + c.width, 0) + GAP.length * (cols.length - 1);
  const chosen = new Set<number>();
  const groups = [...new Set(all.map((c) => c.group))].sort((a, b) => a - b);
  const pick = () => all.filter((c) => chosen.has(c.group)).map((c) => ({ ...c.col }));
  for (const g of groups) {
    chosen.add(g);
    const cols = pick();
    const over = lineWidth(cols) - width;
    if (over <= 0) continue;
    const ep = cols.find((c) => c.id === "endpoint");
    if (g === ENDPOINT_GROUP && ep && ep.width - over >= MIN_ENDPOINT) continue;
    chosen.delete(g);
  }
  const cols = pick();
  const ep = cols.find((c) => c.id === "endpoint");
  const over = lineWidth(cols) - width;
  if (ep && over > 0) ep.width = Math.max(MIN_ENDPOINT, ep.width - over);
  return cols;
}

function paint(text: string, colour: keyof typeof COLOURS | null, on: boolean): string {
  return on && colour ? `${COLOURS[colour]}${text}${RESET}` : text;
}

function interfaceLine(v: InterfaceView): string {
  if (v.error !== undefined) return `interface: ${v.name}  (${v.error})`;
  const parts = [
    `interface: ${v.name}`,
    `public key: ${v.publicKey ? abbreviateKey(v.publicKey) : "(none)"}`,
    `listening port: ${v.listenPort}`,
  ];
  if (v.fwmark) parts.push(`fwmark: 0x${v.fwmark.toString(16)}`);
  parts.push(`peers: ${v.peers.length}`);
  return parts.join("  ");
}

/**
 * renderFrame() lays out every interface as lines no wider than
 * `opts.width` (measured without escape codes). Without colour the result
 * has no escape codes at all.
 */
export function renderFrame(views: readonly InterfaceView[], opts: RenderOptions): string[] {
  const width = Math.max(20, opts.width);
  const lines: string[] = [];
  const bold = (s: string) => opts.colour ? `${BOLD}${s}${RESET}` : s;
  if (opts.title !== undefined) lines.push(bold(fit(opts.title, width).trimEnd()));
  if (views.length === 0) {
    lines.push(
      fit(
        `no WireGuard interfaces (no sockets in ${opts.socketDir ?? DEFAULT_SOCKET_DIR})`,
        width,
      ).trimEnd(),
    );
    return lines;
  }
  for (const v of views) {
    if (lines.length > 0) lines.push("");
    lines.push(bold(fit(interfaceLine(v), width).trimEnd()));
    if (v.error !== undefined || v.peers.length === 0) continue;
    const cols = layout(v.peers, width);
    lines.push(
      bold((INDENT + cols.map((c) => fit(c.header, c.width, c.right)).join(GAP)).trimEnd()),
    );
    for (const p of v.peers) {
      const cells = cols.map((c) => {
        const text = fit(c.cell(p, opts.nowSec, c.width), c.width, c.right);
        return paint(text, c.colour?.(p, opts.nowSec) ?? null, opts.colour);
      });
      let line = INDENT + cells.join(GAP);
      if (!opts.colour) line = line.trimEnd();
      lines.push(line);
    }
  }
  const height = opts.height ?? Infinity;
  if (lines.length > height) {
    const shown = Math.max(0, height - 1);
    const more = lines.length - shown;
    lines.length = shown;
    lines.push(
      fit(`… ${more} more lines: name an interface, or enlarge the window`, width).trimEnd(),
    );
  }
  return lines;
}

// ---------------------------------------------------------------------------
// The command.

/** What `gotatun top` was asked to do. */
export interface TopOptions {
  iface: string | null;
  once: boolean;
  watch: boolean;
  help: boolean;
}

/** parseTopArgs() reads `[--once | --watch] [IFACE]`, `-h`/`--help`; a string is a usage error. */
export function parseTopArgs(argv: readonly string[]): TopOptions | string {
  const opts: TopOptions = { iface: null, once: false, watch: false, help: false };
  for (const a of argv) {
    if (a === "--once") opts.once = true;
    else if (a === "--watch") opts.watch = true;
    else if (a === "-h" || a === "--help") opts.help = true;
    else if (a.startsWith("-")) return `unknown option ${a}`;
    else if (opts.iface !== null) return "at most one interface";
    else opts.iface = a;
  }
  if (opts.once && opts.watch) return "--once and --watch exclude each other";
  return opts;
}

/** topUsage() is the help text. */
export function topUsage(): string {
  return `Usage: gotatun top [--once | --watch] [INTERFACE]

Shows WireGuard interfaces live, read over their UAPI sockets in
${DEFAULT_SOCKET_DIR} (gotatun, wireguard-go or any compatible daemon): all of
them, or INTERFACE. Refreshes every second; q or Ctrl-C quits.
${SOCKET_DIR_ENV}=DIR reads the sockets in DIR instead (gotatun proxy and
forward with --uapi DIR).

  --once    print one plain frame and exit (the default when stdout is not
            a terminal); rates need two samples and show "-"
  --watch   keep refreshing even when stdout is not a terminal (plain frames)

Handshake ages are green under 2 minutes, yellow under 3, red otherwise.
The sparklines of one interface and direction share a scale: their header
gives the rate of a full cell (█=…).
Colour follows WG_COLOR_MODE (always, never, auto) and NO_COLOR.
`;
}

const encoder = new TextEncoder();

function writeAll(text: string): void {
  const data = encoder.encode(text);
  let off = 0;
  while (off < data.length) off += Deno.stdout.writeSync(data.subarray(off));
}

function isTerminal(file: { isTerminal(): boolean }): boolean {
  try {
    return file.isTerminal();
  } catch {
    return false;
  }
}

function terminalSize(
  env: Readonly<Record<string, string | undefined>>,
  tty: boolean,
): { columns: number; rows: number } {
  if (tty) {
    try {
      return Deno.consoleSize();
    } catch {
      // fall through
    }
  }
  const cols = Number(env.COLUMNS);
  return { columns: Number.isInteger(cols) && cols > 0 ? cols : Infinity, rows: Infinity };
}

function colourWanted(env: Readonly<Record<string, string | undefined>>, tty: boolean): boolean {
  if (env.WG_COLOR_MODE === "always") return true;
  if (env.WG_COLOR_MODE === "never") return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  return tty;
}

/**
 * topMain() runs `gotatun top` with `argv` (after "top") and returns the exit
 * code: 0, or 1 for a usage error or, with `--once`, an interface that could
 * not be read. A reader that closed our stdout (`top --watch | head -1`) ends
 * it quietly with 0, as it ends `wg show | head -1`. The caller exits the
 * process afterwards (a read of stdin may still be pending in watch mode).
 */
export async function topMain(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  try {
    return await top(argv, env);
  } catch (err) {
    if (err instanceof Deno.errors.BrokenPipe) return 0;
    throw err;
  }
}

async function top(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  const parsed = parseTopArgs(argv);
  if (typeof parsed === "string") {
    Deno.stderr.writeSync(encoder.encode(`gotatun top: ${parsed}\n${topUsage()}`));
    return 1;
  }
  const opts: TopOptions = parsed;
  if (opts.help) {
    writeAll(topUsage());
    return 0;
  }
  const dir = socketDirFromEnv(env);
  const tty = isTerminal(Deno.stdout);
  const history = new TopHistory();
  const resolver = defaultResolver();
  async function sample(timeoutMs: number): Promise<InterfaceView[]> {
    const names = opts.iface !== null ? [opts.iface] : await listInterfaces(dir);
    // A stale socket stays, shown as "daemon not running" (`wg` would unlink it).
    const ctx: IpcContext = { socketDir: dir, resolver, timeoutMs, keepStale: true };
    const snaps = await Promise.all(names.map((n) => snapshot(n, ctx)));
    history.forgetOthers(names);
    const now = performance.now();
    return snaps.map((s) => history.update(s, now));
  }

  if (opts.once || (!tty && !opts.watch)) {
    const views = await sample(UAPI_TIMEOUT_MS);
    const lines = renderFrame(views, {
      width: terminalSize(env, false).columns,
      colour: false,
      nowSec: Date.now() / 1000,
      socketDir: dir,
    });
    writeAll(lines.join("\n") + "\n");
    return views.some((v) => v.error !== undefined) && opts.iface !== null ? 1 : 0;
  }
  return await watch(() => sample(WATCH_UAPI_TIMEOUT_MS), {
    tty,
    colour: tty && colourWanted(env, tty),
    env,
    dir,
  });
}

/**
 * watch() refreshes every second until q, Ctrl-C or a signal. On a terminal:
 * alternate screen, hidden cursor, raw stdin, all undone on the way out.
 */
async function watch(
  sample: () => Promise<InterfaceView[]>,
  o: {
    tty: boolean;
    colour: boolean;
    env: Readonly<Record<string, string | undefined>>;
    dir: string;
  },
): Promise<number> {
  let quit!: () => void;
  const quitting = new Promise<void>((r) => (quit = r));
  let done = false;
  let wake: (() => void) | null = null;
  function stop(): void {
    done = true;
    quit();
  }
  function redraw(): void {
    wake?.();
  }
  const signals: [Deno.Signal, () => void][] = [
    ["SIGINT", stop],
    ["SIGTERM", stop],
    ["SIGHUP", stop],
  ];
  if (o.tty) signals.push(["SIGWINCH", redraw]);
  for (const [sig, fn] of signals) {
    try {
      Deno.addSignalListener(sig, fn);
    } catch {
      // not supported here
    }
  }
  const raw = o.tty && isTerminal(Deno.stdin);
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  try {
    if (o.tty) writeAll(ENTER_SCREEN);
    if (raw) {
      Deno.stdin.setRaw(true);
      reader = Deno.stdin.readable.getReader();
      readKeys(reader, stop);
    }
    let first = true;
    while (!done) {
      const started = performance.now();
      const views = await sample();
      if (done) break;
      const size = terminalSize(o.env, o.tty);
      const lines = renderFrame(views, {
        width: size.columns,
        height: size.rows,
        colour: o.colour,
        nowSec: Date.now() / 1000,
        title: `gotatun top  ${new Date().toLocaleTimeString("en-GB", { hour12: false })}` +
          (raw ? "  (q quits)" : ""),
        socketDir: o.dir,
      });
      if (o.tty) {
        // Home, each line cleared to its end, then the rest of the screen.
        // No newline after the last line: on the bottom row it would scroll.
        writeAll(`${ESC}H` + lines.map((l) => `${l}${ESC}K`).join("\r\n") + `${ESC}J`);
      } else {
        writeAll((first ? "" : "\n") + lines.join("\n") + "\n");
      }
      first = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        quitting,
        new Promise<void>((r) => {
          wake = r;
          // Every second from the start of the last sample, however long it took.
          timer = setTimeout(r, Math.max(0, REFRESH_MS - (performance.now() - started)));
        }),
      ]);
      wake = null;
      clearTimeout(timer);
    }
  } finally {
    for (const [sig, fn] of signals) {
      try {
        Deno.removeSignalListener(sig, fn);
      } catch {
        // never added
      }
    }
    if (raw) {
      try {
        Deno.stdin.setRaw(false);
      } catch {
        // stdin gone
      }
    }
    if (o.tty) {
      try {
        writeAll(LEAVE_SCREEN);
      } catch {
        // terminal gone
      }
    }
    reader?.cancel().catch(() => {});
  }
  return 0;
}

/** Reads raw keys until `q`, `Q`, Ctrl-C or Ctrl-D (or end of input), then calls `stop`. */
async function readKeys(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  stop: () => void,
): Promise<void> {
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      if (r.value.some((b) => b === 0x71 || b === 0x51 || b === 0x03 || b === 0x04)) break;
    }
  } catch {
    // cancelled on the way out
  }
  stop();
}
