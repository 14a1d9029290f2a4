/** A uPlot chart that follows its container's width and takes new data without being rebuilt. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartProps {
  title: string;
  /** uPlot options without width/height/title (rebuilt only when the series' labels change). */
  options: Omit<uPlot.Options, 'width' | 'height' | 'title'>;
  data: uPlot.AlignedData;
  height?: number;
  testId?: string;
}

export function Chart({ title, options, data, height = 240, testId }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot>();
  const key = options.series.map((s) => `${s.label}`).join('|');
  useEffect(() => {
    const el = box.current!;
    const u = new uPlot({ ...options, title, width: el.clientWidth || 600, height }, data, el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: el.clientWidth, height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = undefined;
    };
  }, [key, title, height]);
  useEffect(() => plot.current?.setData(data), [data]);
  return <div class="chart" ref={box} data-testid={testId} data-points={String(data[0]?.length ?? 0)} />;
}

/** Series colours, one per line. */
export const palette = [
  '#2f6fed',
  '#e8590c',
  '#2b8a3e',
  '#ae3ec9',
  '#c92a2a',
  '#1098ad',
  '#5c940d',
  '#d6336c',
];
