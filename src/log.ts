// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Logger in wireguard-go's shape: two functions, verbose and error, chosen by
 * `LOG_LEVEL=verbose|debug|error|silent` (anything else means error).
 */

/** Levels, as wireguard-go's LogLevelSilent/Error/Verbose. */
export const LogLevel = { Silent: 0, Error: 1, Verbose: 2 } as const;
/** One of {@link LogLevel}. */
export type LogLevel = typeof LogLevel[keyof typeof LogLevel];

/** Where protocol code logs. A nil-op function disables a level. */
export interface Logger {
  verbose(message: string): void;
  error(message: string): void;
  /**
   * The most detailed level this logger prints, when known ({@link
   * createLogger} and {@link silentLogger} set it). Lets callers skip
   * building messages nobody will see; absent means "maybe everything".
   */
  readonly level?: LogLevel;
}

/** A logger that drops everything. */
export const silentLogger: Logger = { verbose() {}, error() {}, level: LogLevel.Silent };

/**
 * Whether `log.verbose` may print: false only when the logger says so
 * ({@link Logger.level}). Check it before building a verbose message in a
 * loop (a UAPI `set` logs once per allowed IP).
 */
export function verboseEnabled(log: Logger): boolean {
  return log.level === undefined || log.level >= LogLevel.Verbose;
}

/** The level for a LOG_LEVEL value, as wireguard-go's main.go. */
export function parseLogLevel(value: string | undefined): LogLevel {
  switch (value) {
    case "verbose":
    case "debug":
      return LogLevel.Verbose;
    case "error":
      return LogLevel.Error;
    case "silent":
      return LogLevel.Silent;
    default:
      return LogLevel.Error;
  }
}

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${
    p(d.getMinutes())
  }:${p(d.getSeconds())}`;
}

/**
 * A logger writing wireguard-go's line shape, `DEBUG: (wg0) 2025/05/22 01:02:03 msg`
 * and `ERROR: (wg0) …`, through `write` (stdout in the daemon).
 */
export function createLogger(
  level: LogLevel,
  prefix: string,
  write: (line: string) => void,
): Logger {
  const tag = prefix ? `(${prefix}) ` : "";
  return {
    level,
    verbose: level >= LogLevel.Verbose
      ? (m) => write(`DEBUG: ${tag}${stamp(new Date())} ${m}\n`)
      : () => {},
    error: level >= LogLevel.Error
      ? (m) => write(`ERROR: ${tag}${stamp(new Date())} ${m}\n`)
      : () => {},
  };
}
