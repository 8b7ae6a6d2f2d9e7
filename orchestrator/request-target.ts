// The front door's first check: only origin-form request targets in their one canonical spelling
// reach routing. A request line can name the same route in other ways (an absolute URL as a proxy
// request has, a fragment, dot segments, doubled slashes, other letter case, the route's own words
// percent-encoded); a router normalises some of them and a string comparison elsewhere sees others,
// which is how requests once reached signed handlers unsigned. So every other spelling is refused
// here, before routing, with a 400.
import { API_PREFIX } from '../orchestrator-client/protocol.ts';
import { type RouteDef, routePattern } from '../orchestrator-client/routes.ts';

/** A control character (C0 or DEL). */
const isControl = (s: string): boolean => [...s].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f);

/**
 * The check for a server's routes: why a target (the request line's, as sent) is not an
 * origin-form path in canonical spelling, or null when it is. A path that names one of `routes`
 * only when letter case is ignored is refused rather than left to fall through.
 */
export function requestTargetCheck(routes: readonly Pick<RouteDef, 'path'>[]): (target: string) => string | null {
  const exact = routes.map((r) => routePattern(r.path));
  const anyCase = routes.map((r) => routePattern(r.path, 'i'));
  return (target) => targetProblem(target, exact, anyCase);
}

function targetProblem(target: string, exact: RegExp[], anyCase: RegExp[]): string | null {
  if (target === '*') return "an asterisk-form request target ('*') is not served: send a path such as /v1/health";
  if (!target.startsWith('/')) {
    return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(target)
      ? 'an absolute-form request target (scheme://host/path, as sent to a proxy) is not served: send the path alone'
      : 'the request target must be a path starting with / (authority-form and other targets are not served)';
  }
  if (target.includes('#')) return 'a request target carries no fragment (#…)';
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (path.includes('//')) return 'the request path has an empty segment (a doubled slash)';
  if (path.includes('\\')) return 'the request path holds a backslash';
  const segments = path.split('/').slice(1);
  const decoded: string[] = [];
  for (const seg of segments) {
    let plain: string;
    try {
      plain = decodeURIComponent(seg);
    } catch {
      return 'the request path is not valid percent-encoding';
    }
    if (plain === '.' || plain === '..') return 'the request path has a dot segment (. or ..)';
    if (plain.includes('/') || plain.includes('\\')) return 'the request path has an encoded separator (%2F or %5C) in a segment';
    if (isControl(plain)) return 'the request path holds a control character';
    decoded.push(plain);
  }
  const prefix = API_PREFIX.slice(1);
  // The router decodes a path before it matches it (/%761/health is /v1/health to it), so the
  // prefix and the routes are compared decoded; their own words must still be written plainly.
  if (segments[0] !== prefix && decoded[0].toLowerCase() === prefix) {
    return decoded[0] === prefix ? `the API prefix ${API_PREFIX} is written plainly, not percent-encoded` : `paths are case-sensitive: the API is under ${API_PREFIX}/`;
  }
  if (!exact.some((p) => p.test(path))) {
    const plainPath = `/${decoded.join('/')}`;
    if (exact.some((p) => p.test(plainPath))) return "the request path percent-encodes a route's own words: write them plainly (/v1/health, not /v1/%68ealth)";
    if (anyCase.some((p) => p.test(plainPath))) return 'paths are case-sensitive: this path names a route only in another letter case';
  }
  return null;
}
