// Form bodies as Entra reads them: every value of a name kept, so a repeated parameter is an
// error (AADSTS90015) rather than a silent "last one wins".
import { AadError } from './aad-error.ts';

export class FormParams {
  readonly #values = new Map<string, string[]>();

  static parse(body: string): FormParams {
    const form = new FormParams();
    for (const [name, value] of new URLSearchParams(body)) {
      const list = form.#values.get(name);
      if (list) list.push(value);
      else form.#values.set(name, [value]);
    }
    return form;
  }

  static fromQuery(query: unknown): FormParams {
    const form = new FormParams();
    if (query && typeof query === 'object') {
      for (const [name, value] of Object.entries(query)) {
        const list = Array.isArray(value) ? value.map(String) : [String(value)];
        form.#values.set(name, list);
      }
    }
    return form;
  }

  /** The single value of `name`, undefined when absent; AADSTS90015 when repeated. */
  get(name: string): string | undefined {
    const list = this.#values.get(name);
    if (!list) return undefined;
    if (list.length > 1) throw new AadError(90015, { name });
    return list[0];
  }

  /** Like get(), but AADSTS900144 when absent or empty. */
  require(name: string): string {
    const value = this.get(name);
    if (value === undefined || value === '') throw new AadError(900144, { name });
    return value;
  }

  has(name: string): boolean {
    return this.#values.has(name);
  }

  entries(): [string, string][] {
    return [...this.#values].map(([name, list]) => [name, list[0] ?? '']);
  }
}
