// Web APIs that model-written code expects, written for the sandbox.
//
// The embedded V8 has none of them. Vendoring an npm implementation would copy
// another project's code into this repository, and nothing can be fetched at
// run time, so these are small implementations of the parts that scripts use:
//   TextEncoder, TextDecoder     UTF-8 only, as the Encoding standard's default
//   atob, btoa                   forgiving base64, over V8's Uint8Array.fromBase64
//   structuredClone              plain data, Date, RegExp, Map, Set, buffers, errors
//   URLSearchParams              the application/x-www-form-urlencoded rules
//   URL                          absolute and relative URLs, see the NOTE below
// None of them reaches the host. The host evaluates this file only for code
// whose text names one of the globals it defines (see `names_web_api` in
// `_sandbox.py`), after `_bootstrap.js` and before the code. So the buffers
// they allocate go through the bootstrap's metered constructors, and each
// `define` below replaces the bootstrap's placeholder of that name.
(function (globalObject) {
  "use strict";

  const ObjectDefineProperty = Object.defineProperty;
  const StringFromCharCode = String.fromCharCode;
  const Uint8ArrayCtor = Uint8Array;
  const TypeErrorCtor = TypeError;

  function define(name, value) {
    ObjectDefineProperty(globalObject, name, {
      value, writable: true, configurable: true, enumerable: false,
    });
  }

  // Defined by `_bootstrap.js`, which evaluates first.
  const DOMException = globalObject.DOMException;

  // --- TextEncoder / TextDecoder -------------------------------------------

  function utf8Encode(text) {
    const input = String(text);
    const bytes = [];
    for (let i = 0; i < input.length; i++) {
      let code = input.charCodeAt(i);
      if (code >= 0xd800 && code <= 0xdbff && i + 1 < input.length) {
        const next = input.charCodeAt(i + 1);
        if (next >= 0xdc00 && next <= 0xdfff) {
          code = 0x10000 + ((code - 0xd800) << 10) + (next - 0xdc00);
          i++;
        }
      }
      if (code >= 0xd800 && code <= 0xdfff) {
        code = 0xfffd; // a lone surrogate becomes U+FFFD, as the USVString conversion requires
      }
      if (code < 0x80) {
        bytes.push(code);
      } else if (code < 0x800) {
        bytes.push(0xc0 | (code >> 6), 0x80 | (code & 0x3f));
      } else if (code < 0x10000) {
        bytes.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
      } else {
        bytes.push(0xf0 | (code >> 18), 0x80 | ((code >> 12) & 0x3f),
          0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
      }
    }
    return new Uint8ArrayCtor(bytes);
  }

  class TextEncoder {
    get encoding() {
      return "utf-8";
    }
    encode(input = "") {
      return utf8Encode(input);
    }
    encodeInto(source, destination) {
      const bytes = utf8Encode(source);
      let written = 0;
      let read = 0;
      // Count whole characters only, as the standard requires.
      const text = String(source);
      for (let i = 0; i < text.length; i++) {
        const code = text.codePointAt(i);
        const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
        if (written + size > destination.length) {
          break;
        }
        for (let k = 0; k < size; k++) {
          destination[written + k] = bytes[written + k];
        }
        written += size;
        read += code >= 0x10000 ? 2 : 1;
        if (code >= 0x10000) {
          i++;
        }
      }
      return { read, written };
    }
  }

  function toBytes(input) {
    if (input === undefined) {
      return new Uint8ArrayCtor(0);
    }
    if (input instanceof ArrayBuffer) {
      return new Uint8ArrayCtor(input);
    }
    if (ArrayBuffer.isView(input)) {
      return new Uint8ArrayCtor(input.buffer, input.byteOffset, input.byteLength);
    }
    throw new TypeErrorCtor("The input must be an ArrayBuffer or an ArrayBuffer view");
  }

  class TextDecoder {
    #fatal;
    #ignoreBOM;
    constructor(label = "utf-8", options = {}) {
      const name = String(label).trim().toLowerCase();
      if (name !== "utf-8" && name !== "utf8" && name !== "unicode-1-1-utf-8") {
        throw new RangeError(`The encoding ${JSON.stringify(String(label))} is not supported; only utf-8 is`);
      }
      this.#fatal = Boolean(options && options.fatal);
      this.#ignoreBOM = Boolean(options && options.ignoreBOM);
    }
    get encoding() {
      return "utf-8";
    }
    get fatal() {
      return this.#fatal;
    }
    get ignoreBOM() {
      return this.#ignoreBOM;
    }
    decode(input) {
      const bytes = toBytes(input);
      const fatal = this.#fatal;
      let out = "";
      let i = 0;
      if (!this.#ignoreBOM && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
        i = 3;
      }
      const invalid = () => {
        if (fatal) {
          throw new TypeErrorCtor("The encoded data was not valid UTF-8");
        }
        return "\ufffd";
      };
      while (i < bytes.length) {
        const first = bytes[i];
        let size = 0;
        let code = 0;
        let lower = 0x80;
        let upper = 0xbf;
        if (first < 0x80) {
          out += StringFromCharCode(first);
          i++;
          continue;
        } else if (first >= 0xc2 && first <= 0xdf) {
          size = 1; code = first & 0x1f;
        } else if (first >= 0xe0 && first <= 0xef) {
          size = 2; code = first & 0xf;
          if (first === 0xe0) lower = 0xa0;
          if (first === 0xed) upper = 0x9f;
        } else if (first >= 0xf0 && first <= 0xf4) {
          size = 3; code = first & 0x7;
          if (first === 0xf0) lower = 0x90;
          if (first === 0xf4) upper = 0x8f;
        } else {
          out += invalid();
          i++;
          continue;
        }
        let k = 1;
        for (; k <= size; k++) {
          const byte = bytes[i + k];
          if (byte === undefined || byte < lower || byte > upper) {
            break;
          }
          lower = 0x80;
          upper = 0xbf;
          code = (code << 6) | (byte & 0x3f);
        }
        if (k <= size) {
          // A truncated or broken sequence: one U+FFFD, then resume at the bad byte.
          out += invalid();
          i += k;
          continue;
        }
        out += String.fromCodePoint(code);
        i += size + 1;
      }
      return out;
    }
  }
  define("TextEncoder", TextEncoder);
  define("TextDecoder", TextDecoder);

  // --- atob / btoa ------------------------------------------------------------

  const Uint8ArrayFromBase64 = Uint8Array.fromBase64;
  const Uint8ArrayToBase64 = Uint8Array.prototype.toBase64;

  function atob(data) {
    const text = String(data).replace(/[\t\n\f\r ]+/g, "");
    let bytes;
    try {
      if (text.length % 4 === 1 || /=[^=]/.test(text)) {
        throw new Error();
      }
      bytes = Uint8ArrayFromBase64(text);
    } catch (_) {
      throw new DOMException("The string to be decoded is not correctly encoded.", "InvalidCharacterError");
    }
    let out = "";
    for (let i = 0; i < bytes.length; i++) {
      out += StringFromCharCode(bytes[i]);
    }
    return out;
  }

  function btoa(data) {
    const text = String(data);
    const bytes = new Uint8ArrayCtor(text.length);
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code > 0xff) {
        throw new DOMException("The string to be encoded contains characters outside of the Latin1 range.", "InvalidCharacterError");
      }
      bytes[i] = code;
    }
    return Reflect.apply(Uint8ArrayToBase64, bytes, []);
  }
  define("atob", atob);
  define("btoa", btoa);

  // --- structuredClone ----------------------------------------------------------

  function cloneError(what) {
    return new DOMException(`${what} could not be cloned.`, "DataCloneError");
  }

  function cloneValue(value, memory) {
    if (typeof value === "function") {
      throw cloneError(`function ${value.name || "(anonymous)"}`);
    }
    if (typeof value === "symbol") {
      throw cloneError(String(value));
    }
    if (value === null || typeof value !== "object") {
      return value;
    }
    if (memory.has(value)) {
      return memory.get(value);
    }
    let copy;
    if (Array.isArray(value)) {
      copy = new Array(value.length);
      memory.set(value, copy);
      for (const key of Object.keys(value)) {
        copy[key] = cloneValue(value[key], memory);
      }
      return copy;
    }
    if (value instanceof Date) {
      copy = new Date(value.getTime());
    } else if (value instanceof RegExp) {
      copy = new RegExp(value.source, value.flags);
    } else if (value instanceof ArrayBuffer) {
      copy = value.slice(0);
    } else if (ArrayBuffer.isView(value)) {
      const buffer = cloneValue(value.buffer, memory);
      const Kind = value.constructor;
      copy = value instanceof DataView
        ? new DataView(buffer, value.byteOffset, value.byteLength)
        : new Kind(buffer, value.byteOffset, value.length);
    } else if (value instanceof Map) {
      copy = new Map();
      memory.set(value, copy);
      for (const [k, v] of value) {
        copy.set(cloneValue(k, memory), cloneValue(v, memory));
      }
      return copy;
    } else if (value instanceof Set) {
      copy = new Set();
      memory.set(value, copy);
      for (const v of value) {
        copy.add(cloneValue(v, memory));
      }
      return copy;
    } else if (value instanceof Error) {
      copy = new Error(value.message);
      ObjectDefineProperty(copy, "name", { value: String(value.name), writable: true, configurable: true });
      if (typeof value.stack === "string") {
        ObjectDefineProperty(copy, "stack", { value: value.stack, writable: true, configurable: true });
      }
    } else if (value instanceof Boolean || value instanceof Number || value instanceof String) {
      copy = Object(value.valueOf());
    } else if (value instanceof Promise || value instanceof WeakMap || value instanceof WeakSet ||
      (typeof WeakRef === "function" && value instanceof WeakRef)) {
      throw cloneError(Object.prototype.toString.call(value));
    } else {
      copy = {};
      memory.set(value, copy);
      for (const key of Object.keys(value)) {
        copy[key] = cloneValue(value[key], memory);
      }
      return copy;
    }
    memory.set(value, copy);
    return copy;
  }

  define("structuredClone", function structuredClone(value, options) {
    if (options !== undefined && options !== null && options.transfer !== undefined &&
      options.transfer.length > 0) {
      throw cloneError("a transfer list");
    }
    return cloneValue(value, new Map());
  });

  // --- URLSearchParams ------------------------------------------------------------

  function formEncode(text) {
    return encodeURIComponent(text)
      .replace(/%20/g, "+")
      .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  }

  function formDecode(text) {
    const spaced = text.replace(/\+/g, " ");
    // Decode each %XX run on its own, keeping a malformed escape as written.
    return spaced.replace(/(%[0-9A-Fa-f]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch (_) {
        return new TextDecoder().decode(new Uint8ArrayCtor(
          run.slice(1).split("%").map((hex) => parseInt(hex, 16))));
      }
    });
  }

  class URLSearchParams {
    #list = [];
    #onChange = null;
    constructor(init = "") {
      if (typeof init === "object" && init !== null) {
        if (typeof init[Symbol.iterator] === "function") {
          for (const pair of init) {
            const entry = [...pair];
            if (entry.length !== 2) {
              throw new TypeErrorCtor("Each URLSearchParams pair must have exactly two items");
            }
            this.#list.push([String(entry[0]), String(entry[1])]);
          }
        } else {
          for (const key of Object.keys(init)) {
            this.#list.push([key, String(init[key])]);
          }
        }
      } else {
        this._parse(String(init));
      }
    }
    _parse(text) {
      this.#list = [];
      const query = text.startsWith("?") ? text.slice(1) : text;
      for (const part of query.split("&")) {
        if (part === "") {
          continue;
        }
        const at = part.indexOf("=");
        const name = at < 0 ? part : part.slice(0, at);
        const value = at < 0 ? "" : part.slice(at + 1);
        this.#list.push([formDecode(name), formDecode(value)]);
      }
    }
    _bind(onChange) {
      this.#onChange = onChange;
    }
    #changed() {
      if (this.#onChange !== null) {
        this.#onChange(this.toString());
      }
    }
    get size() {
      return this.#list.length;
    }
    append(name, value) {
      this.#list.push([String(name), String(value)]);
      this.#changed();
    }
    delete(name, value) {
      const key = String(name);
      this.#list = this.#list.filter(([k, v]) => k !== key || (value !== undefined && v !== String(value)));
      this.#changed();
    }
    get(name) {
      const entry = this.#list.find(([k]) => k === String(name));
      return entry === undefined ? null : entry[1];
    }
    getAll(name) {
      return this.#list.filter(([k]) => k === String(name)).map(([, v]) => v);
    }
    has(name, value) {
      return this.#list.some(([k, v]) => k === String(name) && (value === undefined || v === String(value)));
    }
    set(name, value) {
      const key = String(name);
      const index = this.#list.findIndex(([k]) => k === key);
      if (index < 0) {
        this.#list.push([key, String(value)]);
      } else {
        this.#list[index][1] = String(value);
        this.#list = this.#list.filter(([k], i) => k !== key || i <= index);
      }
      this.#changed();
    }
    sort() {
      // Array.prototype.sort is stable, as the standard requires.
      this.#list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      this.#changed();
    }
    forEach(callback, thisArg) {
      for (const [k, v] of this.#list) {
        callback.call(thisArg, v, k, this);
      }
    }
    *entries() {
      for (const [k, v] of this.#list) {
        yield [k, v];
      }
    }
    *keys() {
      for (const [k] of this.#list) {
        yield k;
      }
    }
    *values() {
      for (const [, v] of this.#list) {
        yield v;
      }
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    toString() {
      return this.#list.map(([k, v]) => `${formEncode(k)}=${formEncode(v)}`).join("&");
    }
  }
  define("URLSearchParams", URLSearchParams);

  // --- URL ------------------------------------------------------------------------
  // NOTE: a subset of the WHATWG URL parser: schemes, credentials, hosts,
  // ports, dot segments, query and fragment, relative references. Hosts are
  // lower-cased but not converted to punycode, and IPv4/IPv6 hosts are kept
  // as written rather than normalised.

  const SPECIAL_PORTS = { "http:": "80", "https:": "443", "ws:": "80", "wss:": "443", "ftp:": "21", "file:": "" };
  const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;

  function encodeSet(text, pattern) {
    return text.replace(pattern, (c) => encodeURIComponent(c));
  }

  function removeDotSegments(path) {
    const output = [];
    const segments = path.split("/");
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i];
      const last = i === segments.length - 1;
      if (segment === "." || segment.toLowerCase() === "%2e") {
        if (last) output.push("");
      } else if (segment === ".." || /^(\.|%2e){2}$/i.test(segment)) {
        if (output.length > 1) output.pop();
        if (last) output.push("");
      } else {
        output.push(segment);
      }
    }
    const joined = output.join("/");
    return joined.startsWith("/") ? joined : `/${joined}`;
  }

  function parseAbsolute(input) {
    const match = SCHEME.exec(input);
    if (match === null) {
      return null;
    }
    const protocol = `${match[1].toLowerCase()}:`;
    let rest = input.slice(match[0].length);
    const parts = { protocol, username: "", password: "", hostname: "", port: "", pathname: "", search: "", hash: "" };
    const hashAt = rest.indexOf("#");
    if (hashAt >= 0) {
      parts.hash = rest.slice(hashAt);
      rest = rest.slice(0, hashAt);
    }
    const queryAt = rest.indexOf("?");
    if (queryAt >= 0) {
      parts.search = rest.slice(queryAt);
      rest = rest.slice(0, queryAt);
    }
    const special = protocol in SPECIAL_PORTS;
    if (special) {
      rest = rest.replace(/\\/g, "/");
    }
    if (rest.startsWith("//") || (special && protocol !== "file:")) {
      rest = rest.replace(/^\/*/, "");
      const end = rest.search(/[/]/);
      let authority = end < 0 ? rest : rest.slice(0, end);
      rest = end < 0 ? "" : rest.slice(end);
      const at = authority.lastIndexOf("@");
      if (at >= 0) {
        const credentials = authority.slice(0, at);
        authority = authority.slice(at + 1);
        const colon = credentials.indexOf(":");
        parts.username = encodeSet(colon < 0 ? credentials : credentials.slice(0, colon), /[^\w.~!$&'()*+,;=%-]/g);
        parts.password = colon < 0 ? "" : encodeSet(credentials.slice(colon + 1), /[^\w.~!$&'()*+,;=%-]/g);
      }
      const portMatch = /:(\d*)$/.exec(authority);
      if (portMatch !== null && !authority.endsWith("]")) {
        authority = authority.slice(0, portMatch.index);
        const port = portMatch[1] === "" ? "" : String(Number(portMatch[1]));
        if (Number(port) > 65535) {
          return undefined;
        }
        parts.port = port === SPECIAL_PORTS[protocol] ? "" : port;
      }
      const host = special ? authority.toLowerCase() : authority;
      if (/[\s<>^|%]/.test(host) || (special && protocol !== "file:" && host === "")) {
        return undefined;
      }
      parts.hostname = host;
      parts.pathname = special ? removeDotSegments(rest || "/") : rest;
    } else {
      parts.pathname = rest;
    }
    parts.pathname = encodeSet(parts.pathname, /[\s"<>`{}]/g);
    parts.search = encodeSet(parts.search, /[\s"<>`]/g);
    parts.hash = encodeSet(parts.hash, /[\s"<>`]/g);
    if (parts.search === "?") parts.search = "";
    if (parts.hash === "#") parts.hash = "";
    return parts;
  }

  function resolve(input, base) {
    if (input.startsWith("//")) {
      return parseAbsolute(`${base.protocol}${input}`);
    }
    const parts = { ...base, hash: "" };
    if (input === "") {
      return parts;
    }
    if (input.startsWith("#")) {
      return parseAbsolute(`${serialize(base).split("#")[0]}${input}`);
    }
    if (input.startsWith("?")) {
      return parseAbsolute(`${base.protocol}//${authorityOf(base)}${base.pathname}${input}`);
    }
    const directory = input.startsWith("/") ? "" : base.pathname.slice(0, base.pathname.lastIndexOf("/") + 1);
    return parseAbsolute(`${base.protocol}//${authorityOf(base)}${directory}${input}`);
  }

  function authorityOf(parts) {
    const credentials = parts.username || parts.password
      ? `${parts.username}${parts.password ? `:${parts.password}` : ""}@`
      : "";
    return `${credentials}${parts.hostname}${parts.port ? `:${parts.port}` : ""}`;
  }

  function serialize(parts) {
    const hasAuthority = parts.hostname !== "" || parts.protocol in SPECIAL_PORTS;
    const authority = hasAuthority ? `//${authorityOf(parts)}` : "";
    return `${parts.protocol}${authority}${parts.pathname}${parts.search}${parts.hash}`;
  }

  class URL {
    #parts;
    #searchParams;
    constructor(url, base) {
      const input = String(url).trim();
      let parts = parseAbsolute(input);
      if (parts === null && base !== undefined) {
        const baseParts = parseAbsolute(String(base).trim());
        if (baseParts !== null && baseParts !== undefined) {
          parts = resolve(input, baseParts);
        }
      }
      if (parts === null || parts === undefined) {
        throw new TypeErrorCtor(`Invalid URL: ${JSON.stringify(input)}`);
      }
      this.#parts = parts;
      this.#searchParams = new URLSearchParams(parts.search);
      this.#searchParams._bind((query) => {
        this.#parts.search = query === "" ? "" : `?${query}`;
      });
    }
    static canParse(url, base) {
      try {
        new URL(url, base);
        return true;
      } catch (_) {
        return false;
      }
    }
    static parse(url, base) {
      try {
        return new URL(url, base);
      } catch (_) {
        return null;
      }
    }
    get href() { return serialize(this.#parts); }
    set href(value) {
      const parts = parseAbsolute(String(value));
      if (!parts) throw new TypeErrorCtor(`Invalid URL: ${JSON.stringify(String(value))}`);
      this.#parts = parts;
      this.#searchParams._parse(parts.search);
    }
    get origin() {
      const p = this.#parts;
      return p.protocol in SPECIAL_PORTS && p.protocol !== "file:"
        ? `${p.protocol}//${p.hostname}${p.port ? `:${p.port}` : ""}`
        : "null";
    }
    get protocol() { return this.#parts.protocol; }
    get username() { return this.#parts.username; }
    set username(value) { this.#parts.username = encodeURIComponent(String(value)); }
    get password() { return this.#parts.password; }
    set password(value) { this.#parts.password = encodeURIComponent(String(value)); }
    get host() { return `${this.#parts.hostname}${this.#parts.port ? `:${this.#parts.port}` : ""}`; }
    get hostname() { return this.#parts.hostname; }
    set hostname(value) { this.#parts.hostname = String(value).toLowerCase(); }
    get port() { return this.#parts.port; }
    set port(value) {
      const port = String(value);
      this.#parts.port = port === SPECIAL_PORTS[this.#parts.protocol] ? "" : port;
    }
    get pathname() { return this.#parts.pathname; }
    set pathname(value) {
      const path = String(value);
      this.#parts.pathname = removeDotSegments(path.startsWith("/") ? path : `/${path}`);
    }
    get search() { return this.#parts.search; }
    set search(value) {
      const text = String(value);
      this.#parts.search = text === "" || text === "?" ? "" : text.startsWith("?") ? text : `?${text}`;
      this.#searchParams._parse(this.#parts.search);
    }
    get searchParams() { return this.#searchParams; }
    get hash() { return this.#parts.hash; }
    set hash(value) {
      const text = String(value);
      this.#parts.hash = text === "" || text === "#" ? "" : text.startsWith("#") ? text : `#${text}`;
    }
    toString() { return this.href; }
    toJSON() { return this.href; }
  }
  define("URL", URL);
})(globalThis);
//# sourceURL=isobind:webapis
