// The prelude evaluated in every fresh isolate before the model's code.
//
// It defines the sandbox globals (`tools`, `console`, `crypto`, the named
// error classes, `DOMException`, the network stubs, `setTimeout`, placeholders
// for the Web APIs that `_webapis.js` defines) and one frozen,
// non-configurable global, `__isobind`, through which the host drives the run.
// The host never reads a live JavaScript object: it only evaluates
// `__isobind.poll(token)`, which returns a JSON string, and
// `__isobind.deliver(token, text, now)`, which takes one.
//
// A worker evaluates the prelude in an isolate before any request arrives,
// and then calls `__isobind.prepare(token, seed)` once:
//   token    a random string; configure, poll, deliver and fireTimers reject
//            any other, so code that finds `__isobind` cannot drain or settle
//            the run
//   seed     64 hex digits from os.urandom, the key of `crypto`
// When the request arrives, the host calls
// `__isobind.configure(token, api, limits)` once, with JSON text, before the
// code runs:
//   api      {"<server identifier>": ["<tool identifier>", ...]}, with the
//            key "(fetch)" when the host runs an egress gateway
//   limits   {"maxLogBytes", "maxCalls", "maxBufferBytes", "maxResultBytes"}
(function (globalObject) {
  "use strict";

  let API = null;
  let LIMITS = null;
  let TOKEN = null;

  // Intrinsics captured before any model code runs, so that patching
  // `JSON`, `Array.prototype` or `Promise` later cannot redirect the bridge.
  const ObjectFreeze = Object.freeze;
  const ObjectCreate = Object.create;
  const ObjectKeys = Object.keys;
  const ObjectDefineProperty = Object.defineProperty;
  const ObjectGetOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
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
  const MapEntries = Map.prototype.entries;
  const MapIteratorNext = ObjectGetPrototypeOf(new Map().entries()).next;
  const PromiseResolve = Promise.resolve.bind(Promise);
  const Uint32ArrayCtor = Uint32Array;
  const Uint8ArrayCtor = Uint8Array;
  const ArrayBufferIsView = ArrayBuffer.isView;
  const NumberToString = Number.prototype.toString;
  const StringPadStart = String.prototype.padStart;
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
  const Uint8ArrayFromBase64 = Uint8Array.fromBase64;
  const Uint8ArrayToBase64 = Uint8Array.prototype.toBase64;
  const EncodeURIComponent = encodeURIComponent;
  const NumberParseInt = Number.parseInt;
  const StringCharCodeAt = String.prototype.charCodeAt;
  const StringIncludes = String.prototype.includes;
  const ArraySort = Array.prototype.sort;

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

  // Defined here rather than with the Web APIs, because `crypto.getRandomValues`
  // throws one whether or not the run loaded them.
  class DOMException extends ErrorCtor {
    constructor(message = "", name = "Error") {
      super(message);
      ObjectDefineProperty(this, "name", {
        value: StringCtor(name), writable: true, configurable: true, enumerable: false,
      });
    }
  }
  ObjectDefineProperty(globalObject, "DOMException", {
    value: DOMException, writable: true, configurable: true, enumerable: false,
  });

  // --- Web API placeholders -------------------------------------------------
  // The host evaluates `_webapis.js` only for code whose text names one of
  // these globals or reaches the global object by computed access, because it
  // costs about 0.7 ms of CPU per isolate (`bench/bench_prelude.py`). Until
  // then each name is an accessor whose getter throws, so that code reaching
  // one unseen, as through the escaped identifier `Text\u0045ncoder`, learns
  // what to do instead of reading `undefined`. Assigning to one replaces it with the
  // value, and `_webapis.js` replaces each with the real one. The list must
  // equal the names that `_webapis.js` defines, which a test checks.
  const WEB_API_NAMES = [
    "TextEncoder", "TextDecoder", "atob", "btoa", "structuredClone", "URL", "URLSearchParams",
  ];
  const WEB_API_LIST = WEB_API_NAMES.join(", ");
  const ReferenceErrorCtor = ReferenceError;

  function defineWebApiPlaceholder(name) {
    ObjectDefineProperty(globalObject, name, {
      get: function () {
        throw new ReferenceErrorCtor(
          `${name} is not loaded in this run: the sandbox loads the Web APIs ` +
          `(${WEB_API_LIST}) only for code that names one of them. ` +
          `Write ${name} as a plain name in the code (for example \`globalThis.${name}\`) ` +
          "instead of building the name at run time.");
      },
      set: function (value) {
        ObjectDefineProperty(globalObject, name, {
          value, writable: true, configurable: true, enumerable: false,
        });
      },
      configurable: true,
      enumerable: false,
    });
  }
  for (let i = 0; i < WEB_API_NAMES.length; i++) {
    defineWebApiPlaceholder(WEB_API_NAMES[i]);
  }

  // --- Network stubs ------------------------------------------------------

  const NO_NETWORK =
    "The sandbox has no network access. Call the tools on `tools.<server>.<tool>(input)` instead";

  function networkError(what) {
    return new NetworkAccessError(`${what} is not available: ${NO_NETWORK}.`);
  }

  // The key of the egress gateway in API; no sanitised identifier contains "(".
  const EGRESS = "(fetch)";
  // API arrives with `configure`, after this prelude ran, so check at call time.
  function egressEnabled() {
    return API !== null && ArrayIsArray(API[EGRESS]);
  }

  function fetch(resource, init) {
    let target = "";
    try {
      target = ` ${StringCtor(resource && resource.url !== undefined ? resource.url : resource)}`;
    } catch (_) {
      target = "";
    }
    if (!egressEnabled()) {
      return PromiseReject(networkError(`fetch(${target.trim()})`));
    }
    let request;
    try {
      request = fetchRequest(target.trim(), resource, init);
    } catch (error) {
      return PromiseReject(error);
    }
    // The host checks the origin and method, adds credentials and makes the request.
    return ReflectApply(PromiseThen, callTool(EGRESS, "request", request), [makeResponse]);
  }

  function fetchRequest(url, resource, init) {
    const options = init === undefined || init === null ? {} : init;
    const method = StringCtor(options.method !== undefined ? options.method :
      (resource && resource.method !== undefined ? resource.method : "GET")).toUpperCase();
    const headers = {};
    const given = options.headers !== undefined ? options.headers :
      (resource && resource.headers !== undefined ? resource.headers : {});
    if (ArrayIsArray(given)) {
      for (let i = 0; i < given.length; i++) {
        headers[StringCtor(given[i][0])] = StringCtor(given[i][1]);
      }
    } else if (given !== null && typeof given === "object") {
      for (const name of ObjectKeys(given)) {
        headers[name] = StringCtor(given[name]);
      }
    }
    const names = ObjectKeys(headers);
    for (let i = 0; i < names.length; i++) {
      if (!isHeaderName(names[i]) || !isHeaderValue(headers[names[i]])) {
        throw new TypeErrorCtor(
          `fetch: header ${JSONStringify(names[i])} is invalid: a name must be an HTTP ` +
          "token and a value must be Latin-1 text without line breaks or NUL");
      }
    }
    const request = { url, method, headers };
    const body = options.body;
    if (body !== undefined && body !== null) {
      if (typeof body === "string") {
        request.body = body;
      } else if (body instanceof OriginalArrayBuffer) {
        request.bodyBase64 = ReflectApply(Uint8ArrayToBase64, new Uint8ArrayCtor(body), []);
      } else if (ArrayBufferIsView(body)) {
        const bytes = new Uint8ArrayCtor(body.buffer, body.byteOffset, body.byteLength);
        request.bodyBase64 = ReflectApply(Uint8ArrayToBase64, bytes, []);
      } else {
        throw new TypeErrorCtor(
          "fetch: the body must be a string, an ArrayBuffer or a typed array; " +
          "use JSON.stringify for an object");
      }
    }
    return request;
  }

  // RFC 9110: a field name is a token of visible ASCII except delimiters.
  const HEADER_DELIMITERS = "\"(),/:;<=>?@[\\]{}";
  function isHeaderName(name) {
    if (name.length === 0) {
      return false;
    }
    for (let i = 0; i < name.length; i++) {
      const code = ReflectApply(StringCharCodeAt, name, [i]);
      if (code <= 0x20 || code >= 0x7f || ReflectApply(StringIncludes, HEADER_DELIMITERS, [name[i]])) {
        return false;
      }
    }
    return true;
  }

  // A field value is a ByteString (code points up to U+00FF) without CR, LF or NUL.
  function isHeaderValue(value) {
    for (let i = 0; i < value.length; i++) {
      const code = ReflectApply(StringCharCodeAt, value, [i]);
      if (code === 0x0d || code === 0x0a || code === 0 || code > 0xff) {
        return false;
      }
    }
    return true;
  }

  // The UTF-8 bytes of `text`, which has no lone surrogates because the host decoded it.
  function utf8Bytes(text) {
    const escaped = EncodeURIComponent(text);
    const bytes = freshArray();
    for (let i = 0; i < escaped.length; i++) {
      if (escaped[i] === "%") {
        push(bytes, NumberParseInt(ReflectApply(StringSlice, escaped, [i + 1, i + 3]), 16));
        i += 2;
      } else {
        push(bytes, ReflectApply(StringCharCodeAt, escaped, [i]));
      }
    }
    chargeBuffer(bytes.length);
    return new Uint8ArrayCtor(bytes);
  }

  // The response's bytes as sent: the host adds `bodyBase64` when the text does not keep them.
  function responseBytes(reply, body) {
    if (reply.bodyBase64 === undefined) {
      return utf8Bytes(body);
    }
    const encoded = StringCtor(reply.bodyBase64);
    chargeBuffer(MathFloor(encoded.length * 3 / 4));
    return ReflectApply(Uint8ArrayFromBase64, Uint8ArrayCtor, [encoded]);
  }

  // A Response-like object: status, statusText, ok, url, headers.get/has/entries, text(),
  // json(), arrayBuffer() and bytes().
  function makeResponse(reply) {
    const body = StringCtor(reply.body);
    const headerMap = ObjectCreate(null);
    const names = ObjectKeys(reply.headers);
    for (let i = 0; i < names.length; i++) {
      headerMap[names[i].toLowerCase()] = StringCtor(reply.headers[names[i]]);
    }
    const headers = ObjectFreeze({
      get(name) {
        const value = headerMap[StringCtor(name).toLowerCase()];
        return value === undefined ? null : value;
      },
      has(name) {
        return headerMap[StringCtor(name).toLowerCase()] !== undefined;
      },
      entries() {
        const pairs = freshArray();
        const keys = ObjectKeys(headerMap);
        for (let i = 0; i < keys.length; i++) {
          push(pairs, [keys[i], headerMap[keys[i]]]);
        }
        return pairs;
      },
    });
    return ObjectFreeze({
      status: reply.status,
      statusText: StringCtor(reply.statusText),
      ok: reply.status >= 200 && reply.status < 300,
      url: StringCtor(reply.url),
      redirected: false,
      headers,
      text() {
        return new PromiseCtor((resolve) => resolve(body));
      },
      json() {
        return new PromiseCtor((resolve) => resolve(JSONParse(body)));
      },
      arrayBuffer() {
        return new PromiseCtor((resolve) => resolve(responseBytes(reply, body).buffer));
      },
      bytes() {
        return new PromiseCtor((resolve) => resolve(responseBytes(reply, body)));
      },
    });
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
    "SharedArrayBuffer", "WebAssembly", "__timer_manager", "FinalizationRegistry"]) {
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

  // ToIndex of the spec, as the constructors apply it; the converted number
  // is what reaches the real constructor, so a `valueOf` runs only once.
  function toIndex(value) {
    const number = +value;
    if (number !== number) {
      return 0;
    }
    return number < 0 ? number : MathFloor(number);
  }

  function meterConstructor(name, bytesPerElement) {
    const Original = globalObject[name];
    if (typeof Original !== "function") {
      return;
    }
    const Metered = new Proxy(Original, {
      construct(target, args, newTarget) {
        let first = args[0];
        // ArrayBuffer takes only a length; typed arrays take a length or data.
        if (name === "ArrayBuffer" || first === null || typeof first !== "object") {
          if (first !== undefined || name === "ArrayBuffer") {
            first = toIndex(first);
            chargeBuffer(first * bytesPerElement);
            args = [first, ...ReflectApply(ArraySlice, args, [1])];
          }
        } else if (!(first instanceof OriginalArrayBuffer)) {
          const length = first.length !== undefined ? first.length : first.byteLength;
          chargeBuffer(toIndex(length) * bytesPerElement);
        }
        return ReflectConstruct(target, args, newTarget === Metered ? target : newTarget);
      },
    });
    ObjectDefineProperty(globalObject, name, {
      value: Metered, writable: true, configurable: true, enumerable: false,
    });
    // `new Uint8Array(0).constructor` must not lead back to the unmetered original.
    ObjectDefineProperty(Original.prototype, "constructor", {
      value: Metered, writable: true, configurable: true, enumerable: false,
    });
  }

  const OriginalArrayBuffer = ArrayBuffer;
  const ArraySlice = Array.prototype.slice;
  const ReflectConstruct = Reflect.construct;
  const MathFloor = Math.floor;
  const byteLengthOf = ObjectGetOwnPropertyDescriptor(ArrayBuffer.prototype, "byteLength").get;

  // Growing a buffer in place, or into a new one, allocates too.
  for (const method of ["resize", "transfer", "transferToFixedLength"]) {
    const original = ArrayBuffer.prototype[method];
    if (typeof original !== "function") {
      continue;
    }
    const metered = {
      [method](...args) {
        if (args.length > 0 && args[0] !== undefined) {
          const length = toIndex(args[0]);
          chargeBuffer(length - ReflectApply(byteLengthOf, this, []));
          args = [length];
        }
        return ReflectApply(original, this, args);
      },
    }[method];
    ObjectDefineProperty(ArrayBuffer.prototype, method, {
      value: metered, writable: true, configurable: true, enumerable: false,
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
    resultTooLarge: null,
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
      const keys = ObjectKeys(value);
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i];
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

  const LOG_ENTRY_OVERHEAD = 32;

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
      // Each entry also costs its level and framing on the host, so even an
      // empty line counts against the budget.
      state.logBytes += message.length + LOG_ENTRY_OVERHEAD;
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
      ReflectApply(PromiseThen, PromiseResolve(), [callback]);
    },
    writable: true, configurable: true, enumerable: false,
  });

  function earliestTimer() {
    let best = null;
    // Iterated through captured functions: code may patch Map.prototype.
    const iterator = ReflectApply(MapEntries, timers, []);
    for (;;) {
      const step = ReflectApply(MapIteratorNext, iterator, []);
      if (step.done) {
        return best;
      }
      const id = step.value[0];
      const timer = step.value[1];
      if (best === null || timer.due < best.due || (timer.due === best.due && id < best.id)) {
        best = { id, due: timer.due };
      }
    }
  }

  // Returns the timers due at `clock`, ordered by due time and then by id, in
  // one pass over the map: a search for the earliest per fired timer made
  // 100,000 timers cost billions of comparisons.
  function dueTimers() {
    const due = freshArray();
    const iterator = ReflectApply(MapEntries, timers, []);
    for (;;) {
      const step = ReflectApply(MapIteratorNext, iterator, []);
      if (step.done) {
        break;
      }
      if (step.value[1].due <= clock) {
        push(due, { id: step.value[0], due: step.value[1].due });
      }
    }
    return ReflectApply(ArraySort, due, [compareTimers]);
  }

  function compareTimers(a, b) {
    return a.due - b.due || a.id - b.id;
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
    let stack = `${payload.name}: ${payload.message}`;
    try {
      // The code may have replaced Error.prepareStackTrace or String methods;
      // then the error keeps its message without the call site's frames.
      const lines = StringCtor(site.stack).split("\n");
      let frames = "";
      for (let i = 1; i < lines.length; i++) {
        if (lines[i].indexOf("isobind:bootstrap") < 0 && lines[i].indexOf("isobind:webapis") < 0) {
          frames += `\n${lines[i]}`;
        }
      }
      stack += frames;
    } catch (_) {
      // Keep the header alone.
    }
    ObjectDefineProperty(error, "stack", {
      value: stack,
      writable: true, configurable: true, enumerable: false,
    });
    return error;
  }

  // Wrapped in parentheses, like `configure`, so that V8 compiles it with the
  // prelude, ahead of the request, instead of on the request's first call.
  const defineTools = (function defineTools() {
    const toolsObject = ObjectCreate(null);
    for (const server of ObjectKeys(API)) {
      if (server === EGRESS) {
        continue;
      }
      const namespace = ObjectCreate(null);
      const names = API[server];
      for (let i = 0; i < names.length; i++) {
        const tool = names[i];
        const fn = { [tool]: (input) => callTool(server, tool, input) }[tool];
        namespace[tool] = fn;
      }
      toolsObject[server] = ObjectFreeze(namespace);
    }
    ObjectDefineProperty(globalObject, "tools", {
      value: ObjectFreeze(toolsObject), writable: false, configurable: false, enumerable: false,
    });
  });

  // --- Randomness -------------------------------------------------------------
  // `crypto` and `Math.random` draw from ChaCha20 (RFC 8439 block function)
  // keyed with 32 bytes from os.urandom (the getrandom system call, which
  // the seccomp filter allows) for each run. V8's own generator is not used
  // because a locked-down worker cannot open /dev/urandom to seed it.

  const chachaKey = new Uint32ArrayCtor(8);
  const chachaState = new Uint32ArrayCtor(16);
  const chachaWork = new Uint32ArrayCtor(16);
  const chachaOutput = new Uint8ArrayCtor(64);
  let chachaCounter = 0;
  let chachaOffset = 64;

  function rotate(value, bits) {
    return (value << bits) | (value >>> (32 - bits));
  }

  function quarterRound(x, a, b, c, d) {
    x[a] += x[b]; x[d] = rotate(x[d] ^ x[a], 16);
    x[c] += x[d]; x[b] = rotate(x[b] ^ x[c], 12);
    x[a] += x[b]; x[d] = rotate(x[d] ^ x[a], 8);
    x[c] += x[d]; x[b] = rotate(x[b] ^ x[c], 7);
  }

  function chachaBlock() {
    const s = chachaState;
    s[0] = 0x61707865; s[1] = 0x3320646e; s[2] = 0x79622d32; s[3] = 0x6b206574;
    for (let i = 0; i < 8; i++) {
      s[4 + i] = chachaKey[i];
    }
    s[12] = chachaCounter++;
    s[13] = 0; s[14] = 0; s[15] = 0;
    const x = chachaWork;
    for (let i = 0; i < 16; i++) {
      x[i] = s[i];
    }
    for (let round = 0; round < 10; round++) {
      quarterRound(x, 0, 4, 8, 12); quarterRound(x, 1, 5, 9, 13);
      quarterRound(x, 2, 6, 10, 14); quarterRound(x, 3, 7, 11, 15);
      quarterRound(x, 0, 5, 10, 15); quarterRound(x, 1, 6, 11, 12);
      quarterRound(x, 2, 7, 8, 13); quarterRound(x, 3, 4, 9, 14);
    }
    for (let i = 0; i < 16; i++) {
      const word = (x[i] + s[i]) >>> 0;
      chachaOutput[i * 4] = word & 0xff;
      chachaOutput[i * 4 + 1] = (word >>> 8) & 0xff;
      chachaOutput[i * 4 + 2] = (word >>> 16) & 0xff;
      chachaOutput[i * 4 + 3] = word >>> 24;
    }
    chachaOffset = 0;
  }

  function randomByte() {
    if (chachaOffset >= 64) {
      chachaBlock();
    }
    return chachaOutput[chachaOffset++];
  }

  const INTEGER_ARRAYS = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array,
    Int32Array, Uint32Array, BigInt64Array, BigUint64Array];

  function getRandomValues(array) {
    let integer = false;
    for (let i = 0; i < INTEGER_ARRAYS.length; i++) {
      if (array instanceof INTEGER_ARRAYS[i]) {
        integer = true;
      }
    }
    if (!ArrayBufferIsView(array) || !integer) {
      throw new TypeErrorCtor("crypto.getRandomValues needs an integer typed array");
    }
    if (array.byteLength > 65536) {
      throw new DOMException(
        `crypto.getRandomValues can fill at most 65536 bytes, not ${array.byteLength}`,
        "QuotaExceededError");
    }
    const bytes = new Uint8ArrayCtor(array.buffer, array.byteOffset, array.byteLength);
    for (let i = 0; i < bytes.length; i++) {
      bytes[i] = randomByte();
    }
    return array;
  }

  function hexByte(value) {
    return ReflectApply(StringPadStart, ReflectApply(NumberToString, value, [16]), [2, "0"]);
  }

  function randomUUID() {
    let text = "";
    for (let i = 0; i < 16; i++) {
      let value = randomByte();
      if (i === 6) {
        value = (value & 0x0f) | 0x40;
      } else if (i === 8) {
        value = (value & 0x3f) | 0x80;
      }
      if (i === 4 || i === 6 || i === 8 || i === 10) {
        text += "-";
      }
      text += hexByte(value);
    }
    return text;
  }

  function mathRandom() {
    // 53 random bits, as a double in [0, 1).
    let high = 0;
    for (let i = 0; i < 4; i++) {
      high = high * 256 + randomByte();
    }
    let low = 0;
    for (let i = 0; i < 3; i++) {
      low = low * 256 + randomByte();
    }
    return ((high >>> 11) * 16777216 + low) / 9007199254740992;
  }

  ObjectDefineProperty(globalObject, "crypto", {
    value: ObjectFreeze({ getRandomValues, randomUUID }),
    writable: true, configurable: true, enumerable: false,
  });
  ObjectDefineProperty(Math, "random", {
    value: function random() {
      return mathRandom();
    },
    writable: true, configurable: true, enumerable: false,
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
        if (error.name !== undefined) {
          name = StringCtor(error.name);
        }
        if (error.message !== undefined) {
          message = StringCtor(error.message);
        } else if (!(error instanceof ErrorCtor)) {
          // A plain object was thrown: show its JSON, as far as it has one.
          message = `Uncaught ${JSONStringify(error)}`;
        }
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
    // A string's JSON is at least two characters longer: too large before
    // JSON.stringify builds a copy that may not fit in memory.
    if (typeof value === "string" && value.length + 2 > LIMITS.maxResultBytes) {
      state.resultTooLarge = value.length + 2;
      return;
    }
    let text;
    try {
      text = JSONStringify(value);
    } catch (error) {
      state.error = {
        name: "TypeError",
        message: `The returned value is not JSON-serialisable: ${StringCtor(error && error.message)}`,
        stack: "",
      };
      return;
    }
    if (text === undefined) {
      // JSON.stringify returns undefined, instead of throwing, for a symbol, a
      // function, and an object whose toJSON returns one of those.
      state.error = {
        name: "TypeError",
        message: `The returned value is ${describeUnsendable(value)}, which cannot be sent ` +
          "as JSON data. Return a string, number, boolean, null, array or plain object " +
          "instead, such as its description as a string.",
        stack: "",
      };
      return;
    }
    if (text.length > LIMITS.maxResultBytes) {
      // Only the size crosses to the host.
      state.resultTooLarge = text.length;
      return;
    }
    state.result = text;
  }

  const symbolDescription = ObjectGetOwnPropertyDescriptor(Symbol.prototype, "description").get;

  function describeUnsendable(value) {
    if (typeof value === "symbol") {
      const description = ReflectApply(symbolDescription, value, []);
      return description === undefined ? "a symbol" : `a symbol (${quote(description)})`;
    }
    if (typeof value === "function") {
      let name = "";
      try {
        name = typeof value.name === "string" ? value.name : "";
      } catch (_) {
        // A getter on `name` failed; describe the function without it.
      }
      return name ? `a function (${quote(name)})` : "a function";
    }
    return "an object whose toJSON method returned no JSON value";
  }

  function fail(error) {
    if (state.done) {
      return;
    }
    state.done = true;
    state.error = describeError(error);
  }

  function quote(text) {
    // JSON.stringify of a string primitive never consults toJSON or getters.
    return JSONStringify(StringCtor(text));
  }

  function checkToken(token) {
    if (TOKEN === null || token !== TOKEN) {
      throw new TypeErrorCtor("__isobind is reserved for the host");
    }
  }

  let started = false;

  // Builds the poll message as text, so that a patched Object.prototype.toJSON
  // or Array.prototype cannot change what the host reads.
  function pollText() {
    let calls = "";
    for (let i = 0; i < outbox.length; i++) {
      const call = outbox[i];
      calls += `${i ? "," : ""}[${+call[0]},${quote(call[1])},${quote(call[2])},${quote(call[3])}]`;
    }
    let logText = "";
    for (let i = 0; i < logs.length; i++) {
      const entry = logs[i];
      logText += `${i ? "," : ""}{"level":${quote(entry.level)},"message":${quote(entry.message)}}`;
    }
    let errorText = "null";
    if (state.error !== null) {
      const error = state.error;
      errorText = `{"name":${quote(error.name)},"message":${quote(error.message)},` +
        `"stack":${quote(error.stack)}}`;
    }
    const timer = earliestTimer();
    const nextTimer = timer === null ? "null" : `${+(timer.due - clock)}`;
    return `{"calls":[${calls}],"logs":[${logText}],"done":${state.done ? "true" : "false"},` +
      `"result":${state.result === undefined ? "null" : quote(state.result)},` +
      `"error":${errorText},"bufferLimitHit":${state.bufferLimitHit ? "true" : "false"},` +
      `"logsDropped":${+state.logsDropped},` +
      `"resultTooLarge":${state.resultTooLarge === null ? "null" : +state.resultTooLarge},` +
      `"pendingCalls":${+ReflectApply(MapSize, pendingCalls, [])},"nextTimer":${nextTimer}}`;
  }

  const bridge = {
    prepare(token, seedHex) {
      if (TOKEN !== null) {
        throw new TypeErrorCtor("__isobind is reserved for the host");
      }
      TOKEN = StringCtor(token);
      // The key's bytes, read as little-endian 32-bit words (RFC 8439).
      for (let i = 0; i < 8; i++) {
        let word = 0;
        for (let k = 3; k >= 0; k--) {
          const at = (i * 4 + k) * 2;
          word = word * 256 + +`0x${ReflectApply(StringSlice, seedHex, [at, at + 2])}`;
        }
        chachaKey[i] = word;
      }
    },

    configure: (function configure(token, apiText, limitsText) {
      checkToken(token);
      if (API !== null) {
        throw new TypeErrorCtor("__isobind is reserved for the host");
      }
      API = JSONParse(apiText);
      LIMITS = JSONParse(limitsText);
      defineTools();
    }),

    start(main) {
      if (started || API === null) {
        throw new TypeErrorCtor("__isobind is reserved for the host");
      }
      started = true;
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
    poll(token) {
      checkToken(token);
      const text = pollText();
      outbox = freshArray();
      logs = freshArray();
      return text;
    },

    // Settles finished calls. `text` is [[id, ok, value-or-error], ...] where a
    // value is JSON text and an error is {name, message}.
    deliver(token, text, now) {
      checkToken(token);
      clock = now;
      const outcomes = JSONParse(text);
      for (let i = 0; i < outcomes.length; i++) {
        const id = outcomes[i][0];
        const ok = outcomes[i][1];
        const payload = outcomes[i][2];
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
    fireTimers(token, now) {
      checkToken(token);
      clock = now;
      // Each pass fires, in order, the timers due when it starts. A timer that a
      // callback sets, already due, fires in the next pass.
      for (;;) {
        const due = dueTimers();
        if (due.length === 0) {
          return;
        }
        for (let i = 0; i < due.length; i++) {
          const id = due[i].id;
          const entry = ReflectApply(MapGet, timers, [id]);
          if (entry === undefined) {
            continue; // cleared by an earlier callback of this pass
          }
          ReflectApply(MapDelete, timers, [id]);
          try {
            ReflectApply(entry.callback, undefined, entry.args);
          } catch (error) {
            fail(error);
            return;
          }
        }
      }
    },
  };
  ObjectDefineProperty(globalObject, "__isobind", {
    value: ObjectFreeze(bridge), writable: false, configurable: false, enumerable: false,
  });
})(globalThis);
//# sourceURL=isobind:bootstrap
