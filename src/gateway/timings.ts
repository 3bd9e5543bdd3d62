/** Stage timings of one request: the Server-Timing header and the audit event. */
export class Timings {
  // Two parallel arrays, not an array of pairs: one allocation fewer per stage on every request.
  private readonly names: string[] = [];
  private readonly durations: number[] = [];
  private readonly start = performance.now();
  private last = this.start;

  /** Milliseconds since the request began. */
  elapsed(): number {
    return performance.now() - this.start;
  }

  /** Close the current stage under `name`. */
  mark(name: string): void {
    const now = performance.now();
    this.names.push(name);
    this.durations.push(now - this.last);
    this.last = now;
  }

  header(): string {
    let h = '';
    for (let i = 0; i < this.names.length; i++) h += `${i ? ', ' : ''}${this.names[i]};dur=${(this.durations[i] as number).toFixed(2)}`;
    return h;
  }

  toJSON(): Record<string, number> {
    const o: Record<string, number> = {};
    for (let i = 0; i < this.names.length; i++) o[this.names[i] as string] = Math.round((this.durations[i] as number) * 1000) / 1000;
    return o;
  }
}
