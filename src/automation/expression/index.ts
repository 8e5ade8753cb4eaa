export { type ExpressionScope, evaluate, truthy } from './evaluate.ts';
export { type Expr, FUNCTIONS, forEachNode, parseExpression, stateReferences } from './parser.ts';
export { ExpressionSyntaxError, MAX_EXPRESSION_LENGTH } from './tokens.ts';
