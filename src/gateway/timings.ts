/** Stage timings of one request: the Server-Timing header and the audit event. */
export class Timings {
  private readonly marks: Array<[string, number]> = [];
  private readonly start = performance.now();
  private last = this.start;

  /** Milliseconds since the request began. */
  elapsed(): number {
    return performance.now() - this.start;
  }

  /** Close the current stage under `name`. */
  mark(name: string): void {
    const now = performance.now();
    this.marks.push([name, now - this.last]);
    this.last = now;
  }

  header(): string {
    return this.marks.map(([n, d]) => `${n};dur=${d.toFixed(2)}`).join(', ');
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries(this.marks.map(([n, d]) => [n, Math.round(d * 1000) / 1000]));
  }
}
