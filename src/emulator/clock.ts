// The emulator's clock: real time plus an offset that tests move forward, so expiry of codes,
// tokens, secrets and idle grants is exercised without anyone sleeping.
export class EmulatorClock {
  #offsetMs = 0;

  nowMs(): number {
    return Date.now() + this.#offsetMs;
  }

  nowSeconds(): number {
    return Math.floor(this.nowMs() / 1000);
  }

  get offsetMs(): number {
    return this.#offsetMs;
  }

  advance(seconds: number): void {
    if (!Number.isFinite(seconds)) throw new RangeError('seconds must be a finite number');
    this.#offsetMs += seconds * 1000;
  }

  reset(): void {
    this.#offsetMs = 0;
  }
}
