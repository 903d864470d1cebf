// The API client: every call carries the token from this tab's sessionStorage (never a URL,
// never a cookie), and an error keeps the API's message and its reasons by field.

const TOKEN_KEY = "herald.console.token";
export const API = "/api/v1";

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  scope: null,
  get canWrite() {
    return this.scope === "write";
  },
  keep(token, scope) {
    sessionStorage.setItem(TOKEN_KEY, token);
    this.scope = scope;
  },
  forget() {
    sessionStorage.removeItem(TOKEN_KEY);
    this.scope = null;
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `the API answered ${status}`);
    this.status = status;
    // flask-smorest nests reasons by location first: {"json": {...}} or {"query": {...}}.
    const errors = (body && body.errors) || {};
    this.fields = flatten(errors.json || errors.query || errors.headers || {});
  }
}

// {"send_window": {"end": ["..."]}, "filter": {"tags": {"0": ["..."]}}} ->
// {"send_window.end": [...], "filter.tags.0": [...]}
export function flatten(errors, prefix = "") {
  const flat = {};
  for (const [key, value] of Object.entries(errors)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (Array.isArray(value)) flat[path] = value.map(String);
    else if (value && typeof value === "object") Object.assign(flat, flatten(value, path));
    else flat[path] = [String(value)];
  }
  return flat;
}

let onSignedOut = () => {};
export function whenSignedOut(callback) {
  onSignedOut = callback;
}

export async function call(method, path, body, { token = session.token, contentType } = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token || ""}` };
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = contentType || "application/json";
    payload = contentType ? body : JSON.stringify(body);
  }
  const response = await fetch(API + path, {
    method,
    headers,
    body: payload,
    cache: "no-store",
    credentials: "omit",
    referrerPolicy: "no-referrer",
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && token === session.token) onSignedOut(error.message);
    throw error;
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body === undefined ? {} : body);

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
