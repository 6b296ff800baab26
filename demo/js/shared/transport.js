// The play button, seek bar and clock of the mixer and crossfade pages (#play, #seek, #clock),
// for any player with playing, play(), pause(), seek(t), currentTime() and duration.
import { $, guard } from './dom.js';
import { formatTime } from './format.js';

export function makeTransport(player, { ready, format = formatTime }) {
  let seeking = false;     // the user holds the seek thumb: the clock shows where it is
  const transport = {
    renderPlay() {
      $('play').textContent = player.playing ? '❚❚ Pause' : '▶ Play';
    },
    async togglePlay() {
      if (!ready()) return;
      if (player.playing) player.pause();
      else await player.play();
      transport.renderPlay();
    },
    updateClock() {
      const t = player.currentTime();
      if (!seeking) $('seek').value = String(t);
      const shown = seeking ? Number($('seek').value) : t;
      $('clock').textContent = `${format(shown)} / ${format(player.duration)}`;
    },
    async seekTo(t) {
      await player.seek(t);
      transport.updateClock();
      transport.renderPlay();
    },
    wire() {
      $('play').addEventListener('click', guard(transport.togglePlay));
      $('seek').addEventListener('pointerdown', () => { seeking = true; });
      // a click that does not move the thumb fires no 'change': let the clock drive it again
      $('seek').addEventListener('pointerup', () => setTimeout(() => { seeking = false; }, 50));
      $('seek').addEventListener('input', () => { seeking = true; transport.updateClock(); });
      $('seek').addEventListener('change', guard(async () => {
        seeking = false;
        await transport.seekTo(Number($('seek').value));
      }));
      player.onended = transport.renderPlay;
    },
  };
  return transport;
}
