// Minimal declarations for the parts of npm `smpp` Sluice uses: the codec only.
declare module 'smpp' {
  export interface FieldType {
    read(buffer: Buffer, offset: number, length?: number): unknown;
    write(value: unknown, buffer: Buffer, offset: number): void;
    size(value: unknown): number;
    default: unknown;
  }
  export interface CommandDef {
    id: number;
    command: string;
    params?: Record<string, { type: FieldType; default?: unknown; filter?: unknown }>;
    tlvMap?: Record<string, string>;
  }
  export interface TlvDef {
    id: number;
    tag: string;
    type: FieldType;
    multiple?: boolean;
    filter?: unknown;
  }
  export class PDU {
    constructor(command: string | Buffer, options?: Record<string, unknown>);
    command: string;
    command_length: number;
    command_id: number;
    command_status: number;
    sequence_number: number;
    toBuffer(): Buffer;
    fromBuffer(buffer: Buffer): void;
    _filter(func: string): void;
    [field: string]: unknown;
    static maxLength: number;
  }
  export const commands: Record<string, CommandDef>;
  export const commandsById: Record<number, CommandDef>;
  export const tlvs: Record<string, TlvDef>;
  export const tlvsById: Record<number, TlvDef>;
  export const errors: Record<string, number>;
  export const types: Record<'int8' | 'int16' | 'int32' | 'string' | 'cstring' | 'buffer' | 'dest_address_array' | 'unsuccess_sme_array', FieldType> & {
    tlv: Record<'int8' | 'int16' | 'int32' | 'string' | 'cstring' | 'buffer', FieldType>;
  };
  export function createServer(options: Record<string, unknown>, listener?: (session: Session) => void): import('net').Server;
  export function connect(options: Record<string, unknown>, listener?: () => void): Session;
  export class Session {
    on(event: string, fn: (...args: any[]) => void): this;
    send(pdu: PDU, cb?: (pdu: PDU) => void): boolean;
    close(cb?: () => void): void;
    destroy(): void;
    pause(): void;
    resume(): void;
    [method: string]: any;
  }
}
