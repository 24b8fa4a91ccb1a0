export const demo = (_o: { steps: number }): number => 0;
