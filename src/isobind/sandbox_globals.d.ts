// Globals that isobind's sandbox defines besides `tools`, for type-checking
// code written for it with `tsc --lib es2022`. The API declaration itself
// (`isobind types`) declares `tools`.

interface Console {
  log(...data: unknown[]): void;
  info(...data: unknown[]): void;
  warn(...data: unknown[]): void;
  error(...data: unknown[]): void;
  debug(...data: unknown[]): void;
  trace(...data: unknown[]): void;
}
declare const console: Console;

declare function setTimeout(callback: (...args: unknown[]) => void, delay?: number, ...args: unknown[]): number;
declare function clearTimeout(id: number | undefined): void;
declare function queueMicrotask(callback: () => void): void;

/** A tool reported an error, or its server failed. */
declare class ToolError extends Error {}
/** The input did not match the tool's JSON Schema. */
declare class ToolInputError extends ToolError {}
/** The policy does not allow this call; the message names the rule. */
declare class PermissionDeniedError extends Error {}
/** The sandbox has no network: use `tools.*` instead. */
declare class NetworkAccessError extends Error {}
/** A per-run budget, such as the number of tool calls, was used up. */
declare class LimitExceededError extends Error {}
