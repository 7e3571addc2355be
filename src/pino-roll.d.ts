// pino-roll ships no types: the part Warren uses.
declare module 'pino-roll' {
  import type SonicBoom from 'sonic-boom';
  export default function build(options: {
    file: string;
    size?: string | number;
    extension?: string;
    symlink?: boolean;
    mkdir?: boolean;
    limit?: { count?: number };
    mode?: number;
  }): Promise<SonicBoom>;
}
