export { type ExpressionScope, evaluate, TEXT_LIMIT, textOf, tooLongText, truthy } from './evaluate.ts';
export { type Expr, FUNCTIONS, forEachNode, parseExpression, stateReferences } from './parser.ts';
export { ExpressionSyntaxError, MAX_EXPRESSION_LENGTH } from './tokens.ts';
