/* ultracloud accelerator probe: a 512-byte boot sector (GNU as; see accel-probe.ts).
 * Prints a start marker in real mode, enters long mode (what a kernel needs), runs a
 * bounded CPU-bound loop (nested KVM here runs I/O exits but stalls on real work), then
 * prints the OK marker and halts. Build: as --64 -o p.o accel-probe.S && objcopy -O binary -j .text p.o p.bin */
.code16
start:
  cli
  xor %ax, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  mov $0x7c00, %sp
  mov $(m_start - start + 0x7c00), %si
  call puts16
  lgdt gdtr - start + 0x7c00
  mov %cr0, %eax
  or $1, %eax
  mov %eax, %cr0
  ljmp $0x08, $(pm32 - start + 0x7c00)
puts16:
  mov $0x3f8, %dx
1: lodsb
  test %al, %al
  jz 2f
  out %al, %dx
  jmp 1b
2: ret
.code32
pm32:
  mov $0x10, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  mov $0x1000, %edi          /* identity map the first 2 MiB: PML4 0x1000, PDPT 0x2000, PD 0x3000 */
  xor %eax, %eax
  mov $3072, %ecx
  rep stosl
  movl $0x2003, 0x1000
  movl $0x3003, 0x2000
  movl $0x0083, 0x3000
  mov %cr4, %eax
  or $0x20, %eax             /* PAE */
  mov %eax, %cr4
  mov $0x1000, %eax
  mov %eax, %cr3
  mov $0xC0000080, %ecx      /* EFER.LME */
  rdmsr
  or $0x100, %eax
  wrmsr
  mov %cr0, %eax
  or $0x80000000, %eax       /* paging on: long mode */
  mov %eax, %cr0
  ljmp $0x18, $(lm64 - start + 0x7c00)
.code64
lm64:
  mov $0x4000000, %rcx       /* 64M iterations: ~50 ms on KVM, under 1 s on TCG */
3: dec %rcx
  jnz 3b
  lea m_ok(%rip), %rsi
  mov $0x3f8, %dx
4: lodsb
  test %al, %al
  jz 5f
  out %al, %dx
  jmp 4b
5: hlt
  jmp 5b
m_start: .asciz "ULTRACLOUD_ACCEL_START\n"
m_ok:    .asciz "ULTRACLOUD_ACCEL_OK\n"
.p2align 3
gdt:
  .quad 0
  .quad 0x00cf9a000000ffff   /* 0x08 code32 */
  .quad 0x00cf92000000ffff   /* 0x10 data */
  .quad 0x00af9a000000ffff   /* 0x18 code64 */
gdtr:
  .word gdtr - gdt - 1
  .long gdt - start + 0x7c00
.org 510
.byte 0x55, 0xaa
