// The prelude evaluated in every fresh isolate before the model's code.
//
// It defines the sandbox globals (`tools`, `console`, the named error classes,
// the network stubs, `setTimeout`) and one frozen, non-configurable global,
// `__isobind`, through which the host drives the run. The host never reads a
// live JavaScript object: it only evaluates `__isobind.poll()`, which returns a
// JSON string, and `__isobind.deliver(text)`, which takes one.
//
// Placeholders replaced by the host before evaluation:
//   __ISOBIND_API__          JSON: {"<server identifier>": ["<tool identifier>", ...]}
//   __ISOBIND_LIMITS__       JSON: {"maxLogBytes", "maxCalls", "maxBufferBytes"}
(function (globalObject) {
  "use strict";

  const API = __ISOBIND_API__;
  const LIMITS = __ISOBIND_LIMITS__;

  // Intrinsics captured before any model code runs, so that patching
  // `JSON`, `Array.prototype` or `Promise` later cannot redirect the bridge.
  const ObjectFreeze = Object.freeze;
  const ObjectCreate = Object.create;
  const ObjectKeys = Object.keys;
  const ObjectDefineProperty = Object.defineProperty;
  const ObjectGetPrototypeOf = Object.getPrototypeOf;
  const ReflectApply = Reflect.apply;
  const JSONStringify = JSON.stringify;
  const JSONParse = JSON.parse;
  const PromiseCtor = Promise;
  const PromiseReject = Promise.reject.bind(Promise);
  const PromiseThen = Promise.prototype.then;
  const MapCtor = Map;
  const MapGet = Map.prototype.get;
  const MapSet = Map.prototype.set;
  const MapDelete = Map.prototype.delete;
  const MapSize = Object.getOwnPropertyDescriptor(Map.prototype, "size").get;
  const SetHas = Set.prototype.has;
  const SetAdd = Set.prototype.add;
  const SetDelete = Set.prototype.delete;
  const SetCtor = Set;
  const ArrayIsArray = Array.isArray;
  const StringCtor = String;
  const StringSlice = String.prototype.slice;
  const NumberIsFinite = Number.isFinite;
  const MathMax = Math.max;
  const ErrorCtor = Error;
  const ErrorCaptureStackTrace = Error.captureStackTrace;
  const TypeErrorCtor = TypeError;

  function freshArray() {
    return [];
  }
  function push(array, value) {
    array[array.length] = value;
  }

  // --- Named errors -------------------------------------------------------

  function defineError(name, parent) {
    const ErrorClass = class extends parent {
      constructor(message, options) {
        super(message, options);
        ObjectDefineProperty(this, "name", {
          value: name, writable: true, configurable: true, enumerable: false,
        });
      }
    };
    ObjectDefineProperty(ErrorClass, "name", { value: name });
    ObjectDefineProperty(globalObject, name, {
      value: ErrorClass, writable: true, configurable: true, enumerable: false,
    });
    return ErrorClass;
  }

  const ToolError = defineError("ToolError", ErrorCtor);
  const ToolInputError = defineError("ToolInputError", ToolError);
  const PermissionDeniedError = defineError("PermissionDeniedError", ErrorCtor);
  const NetworkAccessError = defineError("NetworkAccessError", ErrorCtor);
  const LimitExceededError = defineError("LimitExceededError", ErrorCtor);

  const ERROR_CLASSES = {
    ToolError, ToolInputError, PermissionDeniedError, NetworkAccessError, LimitExceededError,
  };

  // --- Network stubs ------------------------------------------------------

  const NO_NETWORK =
    "The sandbox has no network access. Call the tools on `tools.<server>.<tool>(input)` instead";

  function networkError(what) {
    return new NetworkAccessError(`${what} is not available: ${NO_NETWORK}.`);
  }

  function fetch(resource) {
    let target = "";
    try {
      target = ` ${StringCtor(resource && resource.url !== undefined ? resource.url : resource)}`;
    } catch (_) {
      target = "";
    }
    return PromiseReject(networkError(`fetch(${target.trim()})`));
  }

  function blockedConstructor(name) {
    return function () {
      throw networkError(name);
    };
  }

  function importStub(specifier) {
    let target = "";
    try {
      target = StringCtor(specifier);
    } catch (_) {
      target = "";
    }
    return PromiseReject(networkError(`import(${target})`));
  }

  const networkGlobals = {
    fetch,
    // The TypeScript eraser renames `import(x)` to `$mport(x)`, keeping its length.
    $mport: importStub,
    XMLHttpRequest: blockedConstructor("XMLHttpRequest"),
    WebSocket: blockedConstructor("WebSocket"),
    EventSource: blockedConstructor("EventSource"),
    Request: blockedConstructor("Request"),
    importScripts: blockedConstructor("importScripts"),
  };
  for (const name of ObjectKeys(networkGlobals)) {
    ObjectDefineProperty(globalObject, name, {
      value: networkGlobals[name], writable: true, configurable: true, enumerable: false,
    });
  }
  ObjectDefineProperty(globalObject, "navigator", {
    value: ObjectFreeze({ sendBeacon: blockedConstructor("navigator.sendBeacon") }),
    writable: true, configurable: true, enumerable: false,
  });

  // Remove what can schedule work outside a host-driven step, or share memory.
  // mini-racer installs a setTimeout built on Atomics.waitAsync; ours replaces it.
  // Its `var` globals cannot be deleted, so they are overwritten instead.
  for (const name of ["setTimeout", "clearTimeout", "setInterval", "clearInterval",
    "SharedArrayBuffer", "WebAssembly", "__timer_manager"]) {
    if (!Reflect.deleteProperty(globalObject, name)) {
      globalObject[name] = undefined;
    }
  }
  if (typeof Atomics === "object") {
    delete Atomics.wait;
    delete Atomics.waitAsync;
  }

  // --- Code from strings -------------------------------------------------
  // The engine flag --disallow-code-generation-from-strings already blocks
  // these; the stubs keep them blocked when mini-racer was initialised
  // without it. `instanceof Function` keeps working through `prototype`.

  function codeFromStringsError() {
    return new EvalError("Code generation from strings is disabled in the sandbox");
  }
  const evalStub = {
    eval() {
      throw codeFromStringsError();
    },
  }.eval;
  ObjectDefineProperty(globalObject, "eval", {
    value: evalStub, writable: true, configurable: true, enumerable: false,
  });
  const functionConstructors = [
    Function,
    ObjectGetPrototypeOf(async function () {}).constructor,
    ObjectGetPrototypeOf(function* () {}).constructor,
    ObjectGetPrototypeOf(async function* () {}).constructor,
  ];
  for (const Original of functionConstructors) {
    const stub = function () {
      throw codeFromStringsError();
    };
    ObjectDefineProperty(stub, "name", { value: Original.name });
    stub.prototype = Original.prototype;
    ObjectDefineProperty(Original.prototype, "constructor", {
      value: stub, writable: true, configurable: true, enumerable: false,
    });
  }
  ObjectDefineProperty(globalObject, "Function", {
    value: Function.prototype.constructor, writable: true, configurable: true, enumerable: false,
  });

  // --- Buffer budget --------------------------------------------------------
  // V8's heap limit does not count ArrayBuffer backing stores, so the common
  // ways to allocate one are metered here against maxBufferBytes.
  // NOTE: internal allocations (e.g. TypedArray.prototype.slice/map) are not
  // metered; a process-level memory limit is the backstop for those.

  let bufferBytes = 0;
  function chargeBuffer(bytes) {
    const size = +bytes;
    if (!NumberIsFinite(size) || size <= 0) {
      return;
    }
    bufferBytes += size;
    if (bufferBytes > LIMITS.maxBufferBytes) {
      state.bufferLimitHit = true;
      throw new RangeError(
        `MemoryLimitExceeded: buffers would use ${bufferBytes} bytes, over the limit of ` +
        `${LIMITS.maxBufferBytes} bytes`);
    }
  }

  function meterConstructor(name, bytesPerElement) {
    const Original = globalObject[name];
    if (typeof Original !== "function") {
      return;
    }
    const Metered = new Proxy(Original, {
      construct(target, args, newTarget) {
        const first = args[0];
        if (typeof first === "number") {
          chargeBuffer(first * bytesPerElement);
        } else if (first !== null && typeof first === "object" && !(first instanceof ArrayBuffer)) {
          const length = first.length !== undefined ? first.length : first.byteLength;
          if (typeof length === "number") {
            chargeBuffer(length * bytesPerElement);
          }
        }
        return Reflect.construct(target, args, newTarget === Metered ? target : newTarget);
      },
    });
    ObjectDefineProperty(globalObject, name, {
      value: Metered, writable: true, configurable: true, enumerable: false,
    });
  }

  meterConstructor("ArrayBuffer", 1);
  for (const [name, size] of [
    ["Int8Array", 1], ["Uint8Array", 1], ["Uint8ClampedArray", 1], ["Int16Array", 2],
    ["Uint16Array", 2], ["Int32Array", 4], ["Uint32Array", 4], ["Float32Array", 4],
    ["Float64Array", 8], ["BigInt64Array", 8], ["BigUint64Array", 8], ["Float16Array", 2],
  ]) {
    meterConstructor(name, size);
  }

  // --- Run state ------------------------------------------------------------

  const state = {
    done: false,
    result: undefined,
    error: null,
    bufferLimitHit: false,
    logBytes: 0,
    logsDropped: 0,
  };
  let outbox = freshArray();
  let logs = freshArray();
  const pendingCalls = new MapCtor();
  let nextCallId = 1;
  let callCount = 0;

  // --- Console --------------------------------------------------------------

  function inspect(value, depth, seen) {
    switch (typeof value) {
      case "string":
        return depth === 0 ? value : JSONStringify(value);
      case "number":
      case "boolean":
      case "undefined":
        return StringCtor(value);
      case "bigint":
        return `${StringCtor(value)}n`;
      case "symbol":
        return value.toString();
      case "function":
        return `[Function ${value.name || "(anonymous)"}]`;
      default:
        break;
    }
    if (value === null) {
      return "null";
    }
    if (ReflectApply(SetHas, seen, [value])) {
      return "[Circular]";
    }
    if (value instanceof ErrorCtor) {
      return StringCtor(value.stack || `${value.name}: ${value.message}`);
    }
    if (value instanceof Date) {
      return value.toISOString();
    }
    if (depth > 4) {
      return ArrayIsArray(value) ? "[Array]" : "[Object]";
    }
    ReflectApply(SetAdd, seen, [value]);
    let text;
    if (ArrayIsArray(value)) {
      const items = freshArray();
      const shown = value.length > 100 ? 100 : value.length;
      for (let i = 0; i < shown; i++) {
        push(items, inspect(value[i], depth + 1, seen));
      }
      if (value.length > shown) {
        push(items, `... ${value.length - shown} more items`);
      }
      text = items.length ? `[ ${items.join(", ")} ]` : "[]";
    } else if (value instanceof MapCtor) {
      const items = freshArray();
      for (const [k, v] of value) {
        push(items, `${inspect(k, depth + 1, seen)} => ${inspect(v, depth + 1, seen)}`);
      }
      text = `Map(${items.length}) { ${items.join(", ")} }`;
    } else if (value instanceof SetCtor) {
      const items = freshArray();
      for (const v of value) {
        push(items, inspect(v, depth + 1, seen));
      }
      text = `Set(${items.length}) { ${items.join(", ")} }`;
    } else {
      const items = freshArray();
      for (const key of ObjectKeys(value)) {
        const label = /^[A-Za-z_$][\w$]*$/.test(key) ? key : JSONStringify(key);
        push(items, `${label}: ${inspect(value[key], depth + 1, seen)}`);
      }
      text = items.length ? `{ ${items.join(", ")} }` : "{}";
    }
    ReflectApply(SetDelete, seen, [value]);
    return text;
  }

  function formatArgs(args) {
    const parts = freshArray();
    for (let i = 0; i < args.length; i++) {
      let part;
      try {
        part = inspect(args[i], 0, new SetCtor());
      } catch (error) {
        part = `[value that could not be shown: ${StringCtor(error && error.message)}]`;
      }
      push(parts, part);
    }
    return parts.join(" ");
  }

  function makeLogger(level) {
    return function (...args) {
      if (state.logBytes >= LIMITS.maxLogBytes) {
        state.logsDropped++;
        return;
      }
      let message = formatArgs(args);
      const room = LIMITS.maxLogBytes - state.logBytes;
      if (message.length > room) {
        message = `${ReflectApply(StringSlice, message, [0, room])}... [truncated]`;
      }
      state.logBytes += message.length;
      push(logs, { level, message });
    };
  }

  const consoleObject = {
    log: makeLogger("log"),
    info: makeLogger("info"),
    warn: makeLogger("warn"),
    error: makeLogger("error"),
    debug: makeLogger("debug"),
    trace: makeLogger("debug"),
  };
  ObjectDefineProperty(globalObject, "console", {
    value: consoleObject, writable: true, configurable: true, enumerable: false,
  });

  // --- Timers ---------------------------------------------------------------
  // Timers fire only when the host advances the run: the host sleeps until the
  // earliest one is due, bounded by the run's deadline.

  const timers = new MapCtor();
  let nextTimerId = 1;
  let clock = 0;

  function setTimeoutImpl(callback, delay, ...args) {
    if (typeof callback !== "function") {
      throw new TypeErrorCtor("setTimeout needs a function; strings are not evaluated");
    }
    const id = nextTimerId++;
    const wait = MathMax(0, +delay || 0);
    ReflectApply(MapSet, timers, [id, { due: clock + wait, callback, args }]);
    return id;
  }
  function clearTimeoutImpl(id) {
    ReflectApply(MapDelete, timers, [id]);
  }
  globalObject.setTimeout = setTimeoutImpl;
  globalObject.clearTimeout = clearTimeoutImpl;
  ObjectDefineProperty(globalObject, "queueMicrotask", {
    value: function queueMicrotask(callback) {
      ReflectApply(PromiseThen, PromiseCtor.resolve(), [callback]);
    },
    writable: true, configurable: true, enumerable: false,
  });

  function earliestTimer() {
    let best = null;
    for (const [id, timer] of timers) {
      if (best === null || timer.due < best.due || (timer.due === best.due && id < best.id)) {
        best = { id, due: timer.due };
      }
    }
    return best;
  }

  // --- Tools ----------------------------------------------------------------

  function callTool(server, tool, input) {
    if (callCount >= LIMITS.maxCalls) {
      return PromiseReject(new LimitExceededError(
        `CallLimitExceeded: the run made more than ${LIMITS.maxCalls} tool calls`));
    }
    let inputText;
    try {
      inputText = JSONStringify(input === undefined ? {} : input);
    } catch (error) {
      return PromiseReject(new TypeErrorCtor(
        `tools.${server}.${tool}: the input must be JSON-serialisable ` +
        `(${StringCtor(error && error.message)})`));
    }
    if (inputText === undefined || inputText[0] !== "{") {
      return PromiseReject(new TypeErrorCtor(
        `tools.${server}.${tool}: the input must be an object, got ${inputText}`));
    }
    callCount++;
    const id = nextCallId++;
    // The call site's stack, so that a failed call points at the model's code
    // rather than at the prelude that settles it.
    const site = {};
    ErrorCaptureStackTrace(site, callTool);
    return new PromiseCtor((resolve, reject) => {
      ReflectApply(MapSet, pendingCalls, [id, { resolve, reject, site }]);
      push(outbox, [id, server, tool, inputText]);
    });
  }

  function callError(payload, site) {
    const ErrorClass = ERROR_CLASSES[payload.name] || ToolError;
    const error = new ErrorClass(payload.message);
    const lines = StringCtor(site.stack).split("\n");
    let stack = `${error.name}: ${error.message}`;
    for (let i = 1; i < lines.length; i++) {
      if (lines[i].indexOf("isobind:bootstrap") < 0) {
        stack += `\n${lines[i]}`;
      }
    }
    ObjectDefineProperty(error, "stack", {
      value: stack,
      writable: true, configurable: true, enumerable: false,
    });
    return error;
  }

  const toolsObject = ObjectCreate(null);
  for (const server of ObjectKeys(API)) {
    const namespace = ObjectCreate(null);
    for (const tool of API[server]) {
      const fn = { [tool]: (input) => callTool(server, tool, input) }[tool];
      namespace[tool] = fn;
    }
    toolsObject[server] = ObjectFreeze(namespace);
  }
  ObjectDefineProperty(globalObject, "tools", {
    value: ObjectFreeze(toolsObject), writable: false, configurable: false, enumerable: false,
  });

  // Tool discovery (`isobind._search`): host calls under a server name that no
  // server identifier can take, because identifiers cannot contain `#`.
  const DISCOVERY_SERVER = "#isobind";
  const discovery = {
    listServers() {
      return callTool(DISCOVERY_SERVER, "listServers", {});
    },
    searchTools(query, options) {
      const detail = options == null ? undefined : options.detail;
      const limit = options == null ? undefined : options.limit;
      return callTool(DISCOVERY_SERVER, "searchTools", { query, detail, limit });
    },
    describeTools(names) {
      return callTool(DISCOVERY_SERVER, "describeTools", { names });
    },
  };
  ObjectDefineProperty(globalObject, "isobind", {
    value: ObjectFreeze(discovery), writable: false, configurable: false, enumerable: false,
  });

  // --- Completion -----------------------------------------------------------

  function describeError(error) {
    if (error !== null && typeof error === "object") {
      let name = "Error";
      let message = "";
      let stack = "";
      try {
        name = StringCtor(error.name);
        message = StringCtor(error.message);
        stack = typeof error.stack === "string" ? error.stack : "";
      } catch (_) {
        // A getter on the thrown object failed; report what was read.
      }
      return { name, message, stack };
    }
    let text;
    try {
      text = StringCtor(error);
    } catch (_) {
      text = "(a value that cannot be converted to a string)";
    }
    return { name: "Error", message: `Uncaught ${text}`, stack: "" };
  }

  function finish(value) {
    if (state.done) {
      return;
    }
    state.done = true;
    if (value === undefined) {
      state.result = undefined;
      return;
    }
    try {
      state.result = JSONStringify(value);
    } catch (error) {
      state.error = {
        name: "TypeError",
        message: `The returned value is not JSON-serialisable: ${StringCtor(error && error.message)}`,
        stack: "",
      };
    }
  }

  function fail(error) {
    if (state.done) {
      return;
    }
    state.done = true;
    state.error = describeError(error);
  }

  const bridge = {
    start(main) {
      let promise;
      try {
        promise = main();
      } catch (error) {
        fail(error);
        return;
      }
      ReflectApply(PromiseThen, promise, [finish, fail]);
    },

    // Returns everything the host needs since the last poll, as one JSON string.
    poll() {
      const message = {
        calls: outbox,
        logs,
        done: state.done,
        result: state.result === undefined ? null : state.result,
        error: state.error,
        bufferLimitHit: state.bufferLimitHit,
        logsDropped: state.logsDropped,
        pendingCalls: ReflectApply(MapSize, pendingCalls, []),
        nextTimer: null,
      };
      const timer = earliestTimer();
      if (timer !== null) {
        message.nextTimer = timer.due - clock;
      }
      outbox = freshArray();
      logs = freshArray();
      return JSONStringify(message);
    },

    // Settles finished calls. `text` is [[id, ok, value-or-error], ...] where a
    // value is JSON text and an error is {name, message}.
    deliver(text, now) {
      clock = now;
      const outcomes = JSONParse(text);
      for (let i = 0; i < outcomes.length; i++) {
        const [id, ok, payload] = outcomes[i];
        const handlers = ReflectApply(MapGet, pendingCalls, [id]);
        if (handlers === undefined) {
          continue;
        }
        ReflectApply(MapDelete, pendingCalls, [id]);
        if (ok) {
          handlers.resolve(payload === null ? undefined : JSONParse(payload));
        } else {
          handlers.reject(callError(payload, handlers.site));
        }
      }
    },

    // Sets the clock to `now` (ms since the run started) and runs the timers due.
    fireTimers(now) {
      clock = now;
      for (;;) {
        const timer = earliestTimer();
        if (timer === null || timer.due > clock) {
          return;
        }
        const entry = ReflectApply(MapGet, timers, [timer.id]);
        ReflectApply(MapDelete, timers, [timer.id]);
        try {
          ReflectApply(entry.callback, undefined, entry.args);
        } catch (error) {
          fail(error);
          return;
        }
      }
    },
  };
  ObjectDefineProperty(globalObject, "__isobind", {
    value: ObjectFreeze(bridge), writable: false, configurable: false, enumerable: false,
  });
})(globalThis);
//# sourceURL=isobind:bootstrap
