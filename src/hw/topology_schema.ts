/*
 * Scenario key `topology:` — the PCIe fabric of the emulated machine, as a
 * zod 4 schema.
 *
 * Mirrors: nothing in the kernel directly; this is the firmware/"what the
 * bus scan finds" side: host bridges (one per root complex, matched against
 * pci_p2pdma_whitelist[] by the vendor:device of their 00.0 function),
 * root ports, switch upstream/downstream ports, endpoints and their
 * functions, per-port ACS capability/control, per-link generation/width.
 *
 * Shape (YAML):
 *   topology:
 *     policy: rfc-v1 | iommu            # default rfc-v1
 *     cpuRoutesP2p: false               # AMD Zen-like CPU (cpu_supports_p2pdma())
 *     disableAcsRedir: ['0000:02:08.0'] # kernel parameter pci=disable_acs_redir=
 *     hostBridgeWhitelist: [{ id: '1234:5678', sameHostBridgeOnly: true }]  # extra rows
 *     interconnectGBps: 41.6            # socket-to-socket link (bandwidth model)
 *     rootComplexes:
 *       - name: rc0
 *         id: '8086:2020'               # host bridge vendor:device (function 00.0)
 *         iommu: false
 *         p2pEfficiency: 0.75           # P2P through this RC vs host-RAM speed
 *         ports:                        # root ports on the root bus
 *           - slot: '01.0'
 *             link: { gen: 4, width: 16 }
 *             acs: { cap: [SV, RR, CR, UF], ctl: [] }   # or `acs: false` (no capability)
 *             switch:
 *               id: '10b5:8747'
 *               ports:                  # downstream ports
 *                 - slot: '08.0'
 *                   endpoint: { device: gpu0, id: '10de:1db4' }
 *                 - slot: '10.0'
 *                   endpoint:
 *                     functions: [{ fn: 0, device: nic0 }, { fn: 1, device: nic1 }]
 *
 * Invariants: every object is strict (an unknown key is an error naming
 * it); a port has at most one of `switch` / `endpoint` (it has one link);
 * an endpoint has either `device` or `functions`, not both.
 */
import { z } from 'zod';
import { ACS_BIT_NAMES, type AcsBit } from './acs.js';
import { PCIE_WIDTHS } from './pcie_link.js';

export const POLICY_MODES = ['rfc-v1', 'iommu'] as const;
export type PolicyMode = (typeof POLICY_MODES)[number];

const PciId = z
  .string()
  .regex(/^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$/, 'expected a vendor:device id like "8086:2020"');
const Slot = z.string().regex(/^[0-9a-fA-F]{2}\.[0-7]$/, 'expected a device.function like "01.0"');
const DevNum = z.string().regex(/^[0-9a-fA-F]{2}$/, 'expected a two-digit hex device number like "00"');
const BusNum = z.int().min(0).max(255);
const AcsBitSchema = z.enum(ACS_BIT_NAMES as unknown as [AcsBit, ...AcsBit[]]);

export const AcsSpecSchema = z.strictObject({
  /** Capability bits the hardware implements (ACSCap). Default SV RR CR UF. */
  cap: z.array(AcsBitSchema).default(['SV', 'RR', 'CR', 'UF']),
  /** Control bits set by firmware before the kernel runs (ACSCtl). Default none. */
  ctl: z.array(AcsBitSchema).default([]),
});
/** `false` = no ACS extended capability at all. */
const AcsField = z.union([z.literal(false), AcsSpecSchema]);

export const LinkSpecSchema = z.strictObject({
  gen: z.int().min(1).max(6),
  width: z.union(PCIE_WIDTHS.map((w) => z.literal(w)) as unknown as [z.ZodLiteral<1>, z.ZodLiteral<2>]),
});

export const FunctionSpecSchema = z.strictObject({
  fn: z.int().min(0).max(7),
  device: z.string().min(1).optional(),
  name: z.string().optional(),
  id: PciId.optional(),
  acs: AcsField.optional(),
});

export const EndpointSpecSchema = z
  .strictObject({
    /** Device number on the bus below the port, default "00". */
    slot: DevNum.optional(),
    /** Single-function shorthand: the scenario device at function 0. */
    device: z.string().min(1).optional(),
    name: z.string().optional(),
    id: PciId.optional(),
    acs: AcsField.optional(),
    functions: z.array(FunctionSpecSchema).min(1).optional(),
  })
  .refine((e) => !(e.functions && (e.device || e.id || e.acs !== undefined)), {
    message: 'give either `functions` or the single-function shorthand (`device`, `id`, `acs`), not both',
  });

export interface PortSpec {
  slot?: string;
  name?: string;
  id?: string;
  /** Secondary bus number (explicit, e.g. from lspci); default: assigned depth-first. */
  bus?: number;
  link?: z.infer<typeof LinkSpecSchema>;
  acs?: false | z.infer<typeof AcsSpecSchema>;
  switch?: SwitchSpec;
  endpoint?: z.infer<typeof EndpointSpecSchema>;
}
export interface SwitchSpec {
  name?: string;
  id?: string;
  /** Secondary bus of the upstream port (explicit, e.g. from lspci). */
  bus?: number;
  upstreamAcs?: false | z.infer<typeof AcsSpecSchema>;
  ports: PortSpec[];
  /** Functions directly on the upstream port's internal bus (PCIe-to-PCI bridges, switch-integrated functions). */
  endpoints?: z.infer<typeof EndpointSpecSchema>[];
  /** Functions on the port's secondary bus beside the upstream port (which is 00.0 there), e.g. a management endpoint at 00.1. */
  beside?: z.infer<typeof EndpointSpecSchema>[];
}

export const PortSpecSchema: z.ZodType<PortSpec> = z.lazy(() =>
  z
    .strictObject({
      slot: Slot.optional(),
      name: z.string().optional(),
      id: PciId.optional(),
      bus: BusNum.optional(),
      link: LinkSpecSchema.optional(),
      acs: AcsField.optional(),
      switch: SwitchSpecSchema.optional(),
      endpoint: EndpointSpecSchema.optional(),
    })
    .refine((p) => !(p.switch && p.endpoint), {
      message: 'a port has one link: give `switch` or `endpoint`, not both',
    }),
) as z.ZodType<PortSpec>;

export const SwitchSpecSchema: z.ZodType<SwitchSpec> = z.lazy(() =>
  z.strictObject({
    name: z.string().optional(),
    id: PciId.optional(),
    bus: BusNum.optional(),
    upstreamAcs: AcsField.optional(),
    ports: z.array(PortSpecSchema).default([]),
    endpoints: z.array(EndpointSpecSchema).optional(),
    beside: z.array(EndpointSpecSchema).optional(),
  }).refine((sw) => sw.ports.length > 0 || (sw.endpoints?.length ?? 0) > 0, {
    message: 'a switch needs at least one downstream port (ports: [...])',
  }),
) as z.ZodType<SwitchSpec>;

export const RootComplexSpecSchema = z.strictObject({
  name: z.string().min(1).optional(),
  domain: z.int().min(0).max(0xffff).default(0),
  /** Root bus number; default 0 for the first root complex, then the next free bus. */
  bus: BusNum.optional(),
  /** Host bridge vendor:device (the 00.0 function of the root bus), matched against the whitelist. */
  id: PciId.optional(),
  /** CPU socket of this root complex; root complexes of one socket reach each other without the socket interconnect. Default: a socket of its own. */
  socket: z.number().int().min(0).max(255).optional(),
  /** IOMMU on: pci_enable_acs() sets SV RR CR UF on every ACS-capable port below. */
  iommu: z.boolean().default(false),
  /** Bandwidth of P2P routed through this RC as a fraction of the path's link speed (0.75 … 1). */
  p2pEfficiency: z.number().gt(0).max(1).default(1),
  /** Internal fabric bandwidth of the RC, GB/s (bandwidth model). */
  fabricGBps: z.number().positive().default(128),
  /** System RAM bandwidth attached to this RC, GB/s (bandwidth model). */
  memGBps: z.number().positive().default(80),
  ports: z.array(PortSpecSchema).default([]),
  /** Root-complex integrated endpoints (on the root bus itself); `slot` = device number. */
  endpoints: z.array(EndpointSpecSchema).default([]),
});

export const WhitelistEntrySchema = z.strictObject({
  id: PciId,
  sameHostBridgeOnly: z.boolean().default(false),
  name: z.string().optional(),
});

export const TopologySchema = z.strictObject({
  policy: z.enum(POLICY_MODES).default('rfc-v1'),
  /** Platform whose CPU routes P2P through its host bridges (AMD Zen: cpu_supports_p2pdma()). */
  cpuRoutesP2p: z.boolean().default(false),
  /** Kernel parameter pci=disable_acs_redir=<bdf;bdf>: clear RR CR EC on these functions. */
  disableAcsRedir: z.array(z.string().regex(/^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/, 'expected a PCI address like "0000:02:08.0"')).default([]),
  /** Extra host-bridge whitelist rows, added after the kernel's table. */
  hostBridgeWhitelist: z.array(WhitelistEntrySchema).default([]),
  /** Socket-to-socket interconnect bandwidth between root complexes, GB/s. */
  interconnectGBps: z.number().positive().default(41.6),
  rootComplexes: z.array(RootComplexSpecSchema).min(1),
});

export type TopologySpec = z.infer<typeof TopologySchema>;
/** What a YAML file may contain (defaults not yet applied). */
export type TopologyInput = z.input<typeof TopologySchema>;
export type RootComplexSpec = z.infer<typeof RootComplexSpecSchema>;
export type EndpointSpec = z.infer<typeof EndpointSpecSchema>;
export type FunctionSpec = z.infer<typeof FunctionSpecSchema>;
export type AcsSpec = z.infer<typeof AcsSpecSchema>;
export type LinkSpec = z.infer<typeof LinkSpecSchema>;

/** Format a zod error as "topology.rootComplexes[0].ports[1].acs.ctl[0]: <message>" lines. */
export function formatTopologyIssues(err: z.ZodError, prefix = 'topology'): string {
  return flattenIssues(err.issues as ZodIssueLike[], [])
    .map(({ path, message }) => {
      let p = prefix;
      for (const k of path) p += typeof k === 'number' ? `[${k}]` : `.${String(k)}`;
      return `${p}: ${message}`;
    })
    .join('\n');
}

interface ZodIssueLike {
  code: string;
  path: PropertyKey[];
  message: string;
  errors?: ZodIssueLike[][];
}

/**
 * A union (`acs: false | {cap, ctl}`) reports "Invalid input" with one issue
 * list per branch; report the branch that got furthest into the value
 * (deepest path), so the message names the bad key, not just the union.
 */
function flattenIssues(issues: ZodIssueLike[], base: PropertyKey[]): { path: PropertyKey[]; message: string }[] {
  const out: { path: PropertyKey[]; message: string }[] = [];
  for (const i of issues) {
    const path = [...base, ...i.path];
    if (i.code === 'invalid_union' && i.errors && i.errors.length) {
      const depth = (b: ZodIssueLike[]) => Math.max(...b.map((x) => x.path.length + (x.code === 'invalid_type' || x.code === 'invalid_value' ? 0 : 1)));
      const best = [...i.errors].filter((b) => b.length).sort((a, b) => depth(b) - depth(a))[0];
      if (best && depth(best) > 0) {
        out.push(...flattenIssues(best, path));
        continue;
      }
    }
    out.push({ path, message: i.message });
  }
  return out;
}
