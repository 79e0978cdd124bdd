/**
 * The SOS alarm: a beep pattern synthesised with WebAudio, so there is no sound file to
 * serve or fetch. Browsers keep audio suspended until a user gesture, so `unlock` runs in
 * the sign-in click (and on the first key or click after a reload that skipped it).
 */
export class Alarm {
  private ctx: AudioContext | undefined;
  /** Set by the mute button. */
  muted = false;

  /** Creates or resumes the audio context; call from a click or key handler. */
  unlock(): void {
    try {
      this.ctx ??= new AudioContext();
      if (this.ctx.state === 'suspended') void this.ctx.resume();
    } catch {
      // No audio device or API: the alarm stays visual only.
    }
  }

  /** Three short high beeps, twice: distinct from anything else in a control room. */
  sos(): void {
    const ctx = this.ctx;
    if (ctx === undefined || this.muted) return;
    const start = ctx.currentTime + 0.02;
    for (let i = 0; i < 6; i++) {
      const at = start + i * 0.22 + (i >= 3 ? 0.3 : 0);
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'square';
      osc.frequency.value = 1046.5; // C6: cuts through room noise without being shrill
      // A short envelope avoids clicks at the start and end of each beep.
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.2, at + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.15);
      osc.connect(gain).connect(ctx.destination);
      osc.start(at);
      osc.stop(at + 0.16);
    }
  }
}
