/**
 * A canvas to draw a digit on, read the way MNIST digits were made (LeCun et al.): the ink's bounding
 * box scaled to fit 20×20 (keeping its aspect ratio), then placed in a 28×28 field so that its centre
 * of mass is at the centre; white ink on black, 0..1.
 */
import { useEffect, useRef } from 'preact/hooks';

const SIZE = 280;

function canvas2d(w: number, h: number): [HTMLCanvasElement, CanvasRenderingContext2D] {
  const c = document.createElement('canvas');
  c.width = w;
  c.height = h;
  const ctx = c.getContext('2d', { willReadFrequently: true })!;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, w, h);
  return [c, ctx];
}

/** The 784 pixels of the drawing, MNIST-style; all zero for an empty canvas. */
export function mnistPixels(src: HTMLCanvasElement): number[] {
  const ctx = src.getContext('2d', { willReadFrequently: true })!;
  const { data } = ctx.getImageData(0, 0, src.width, src.height);
  let [x0, y0, x1, y1] = [src.width, src.height, -1, -1];
  for (let y = 0; y < src.height; y++)
    for (let x = 0; x < src.width; x++)
      if (data[(y * src.width + x) * 4]! > 30)
        [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
  if (x1 < 0) return new Array<number>(784).fill(0);
  const [bw, bh] = [x1 - x0 + 1, y1 - y0 + 1];
  const scale = 20 / Math.max(bw, bh);
  const [tw, th] = [Math.max(1, Math.round(bw * scale)), Math.max(1, Math.round(bh * scale))];
  const [glyph, g] = canvas2d(tw, th);
  g.imageSmoothingEnabled = true;
  g.imageSmoothingQuality = 'high';
  g.drawImage(src, x0, y0, bw, bh, 0, 0, tw, th);
  const gd = g.getImageData(0, 0, tw, th).data;
  let [mass, mx, my] = [0, 0, 0];
  for (let y = 0; y < th; y++)
    for (let x = 0; x < tw; x++) {
      const v = gd[(y * tw + x) * 4]!;
      [mass, mx, my] = [mass + v, mx + v * (x + 0.5), my + v * (y + 0.5)];
    }
  const [cx, cy] = mass > 0 ? [mx / mass, my / mass] : [tw / 2, th / 2];
  const [, o] = canvas2d(28, 28);
  o.drawImage(glyph, Math.round(14 - cx), Math.round(14 - cy));
  const od = o.getImageData(0, 0, 28, 28).data;
  return Array.from({ length: 784 }, (_, i) => od[i * 4]! / 255);
}

export function DigitCanvas({ onDrawn }: { onDrawn: (pixels: number[]) => void }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const drawing = useRef(false);
  const clear = () => {
    const ctx = ref.current!.getContext('2d', { willReadFrequently: true })!;
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, SIZE, SIZE);
  };
  useEffect(clear, []);
  const at = (e: PointerEvent): [number, number] => {
    const r = ref.current!.getBoundingClientRect();
    return [((e.clientX - r.left) * SIZE) / r.width, ((e.clientY - r.top) * SIZE) / r.height];
  };
  const ctx = () => ref.current!.getContext('2d', { willReadFrequently: true })!;
  return (
    <div class="digit">
      <canvas
        ref={ref}
        width={SIZE}
        height={SIZE}
        data-testid="digit-canvas"
        onPointerDown={(e) => {
          drawing.current = true;
          ref.current!.setPointerCapture(e.pointerId);
          const c = ctx();
          Object.assign(c, { strokeStyle: '#fff', lineWidth: 22, lineCap: 'round', lineJoin: 'round' });
          c.beginPath();
          c.moveTo(...at(e));
          c.lineTo(...at(e));
          c.stroke();
        }}
        onPointerMove={(e) => {
          if (!drawing.current) return;
          const c = ctx();
          c.lineTo(...at(e));
          c.stroke();
        }}
        onPointerUp={() => {
          drawing.current = false;
          onDrawn(mnistPixels(ref.current!));
        }}
      />
      <button type="button" class="secondary small" onClick={clear} data-testid="digit-clear">
        Clear
      </button>
    </div>
  );
}
